import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ConfigError, isLatchkeyError } from '../core/index.js';
import { adminCommand } from './commands/admin.js';
import { doctorCommand } from './commands/doctor.js';
import { keygenCommand } from './commands/keygen.js';
import { migrateCommand } from './commands/migrate.js';
import { rekeyCommand } from './commands/rekey.js';
import { serveCommand } from './commands/serve.js';
import { VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('latchkey')
    .description('Latchkey: a credential broker. Encrypted object store, API keys, OAuth connectors.')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const command of [serveCommand(), migrateCommand(), rekeyCommand(), keygenCommand(), doctorCommand(), adminCommand()]) {
    program.addCommand(command.exitOverride());
  }
  return program;
}

/**
 * Runs the CLI. Exit codes: 0 success, 1 the command failed, 2 bad usage or configuration. Errors
 * are one sentence on stderr, never a stack trace.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help/version text).
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`latchkey: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (isLatchkeyError(err)) {
      process.stderr.write(`latchkey: ${err.message}\n`);
      process.exitCode = err.code === 'invalid_request' || err.code === 'validation_failed' ? 2 : 1;
      return;
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`latchkey: ${message}${code ? ` (${code})` : ''}\n`);
    process.exitCode = 1;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main(process.argv);
