import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { BOOTSTRAP_TENANT, BOOTSTRAP_USERNAME } from '../../identity/index.js';
import { createLatchkey, type Latchkey } from '../../latchkey.js';
import { initialPasswordPath, watchInitialPassword, writeInitialPassword } from '../initial-password.js';
import { SERVER_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

/** The first admin account, when the password file of an earlier start is still there. */
async function bootstrapAccount(latchkey: Latchkey): Promise<{ tenantId: string; userId: string } | undefined> {
  try {
    const tenant = await latchkey.identity.tenants.system();
    const user = await latchkey.identity.users.getByUsername(tenant.id, BOOTSTRAP_USERNAME);
    return { tenantId: tenant.id, userId: user.id };
  } catch {
    return undefined;
  }
}

export function serveCommand(): Command {
  return withSettingsOptions(new Command('serve'), SERVER_SETTINGS)
    .description('Start the Latchkey server (migrates the database first).')
    .action(async (_opts, command: Command) => {
      const settings = settingsFrom(command);
      const passwordFile = initialPasswordPath(settings.dataDir);
      let created: { tenantId: string; userId: string } | undefined;
      const latchkey = await createLatchkey({
        settings,
        // Never through the logger: on a terminal it is printed once; anywhere else stdout may be
        // a log file, so it goes to a file only its owner can read and the log names the file.
        onBootstrap: ({ password, tenantId, userId }) => {
          created = { tenantId, userId };
          if (process.stdout.isTTY) {
            process.stdout.write(
              `\nLatchkey created tenant "${BOOTSTRAP_TENANT}" and user "${BOOTSTRAP_USERNAME}".\nInitial admin password (shown only this once; store it now): ${password}\n\n`,
            );
          } else {
            writeInitialPassword(passwordFile, settings.dataDir, password);
          }
        },
      });
      if (created && !process.stdout.isTTY) {
        latchkey.logger.warn(
          { file: passwordFile },
          `Created tenant "${BOOTSTRAP_TENANT}" and user "${BOOTSTRAP_USERNAME}"; the initial admin password is in ${passwordFile} (deleted once the password is changed).`,
        );
      }
      const account = created ?? (existsSync(passwordFile) ? await bootstrapAccount(latchkey) : undefined);
      const stopWatching = account ? watchInitialPassword(latchkey, passwordFile, account) : () => {};
      let server: Awaited<ReturnType<Latchkey['listen']>>;
      try {
        server = await latchkey.listen();
      } catch (err) {
        stopWatching();
        await latchkey.close();
        throw err;
      }
      latchkey.logger.info(
        { database: latchkey.database.dialect, location: latchkey.database.location, masterKeyId: latchkey.keyring.primary.id },
        `Latchkey is serving on ${server.address}.`,
      );
      await server.closed;
      stopWatching();
      latchkey.logger.info('Latchkey stopped.');
    });
}
