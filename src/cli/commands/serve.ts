import { Command } from 'commander';
import { createLatchkey } from '../../latchkey.js';
import { settingsFrom, withSettingsOptions } from '../settings-options.js';

export function serveCommand(): Command {
  return withSettingsOptions(new Command('serve'))
    .description('Start the Latchkey server (migrates the database first).')
    .action(async (_opts, command: Command) => {
      const settings = settingsFrom(command);
      const latchkey = await createLatchkey({
        settings,
        // Printed once, to the terminal, never through the logger.
        onBootstrap: ({ password }) => {
          process.stdout.write(
            `\nLatchkey created tenant "default" and user "admin".\nInitial admin password (shown only this once; store it now): ${password}\n\n`,
          );
        },
      });
      const server = await latchkey.listen();
      latchkey.logger.info(
        { database: latchkey.database.dialect, location: latchkey.database.location, masterKeyId: latchkey.keyring.primary.id },
        `Latchkey is serving on ${server.address}.`,
      );
      await server.closed;
      latchkey.logger.info('Latchkey stopped.');
    });
}
