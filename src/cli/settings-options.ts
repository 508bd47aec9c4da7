import { Option, type Command } from 'commander';
import { loadSettings, type Settings } from '../core/index.js';

/** Adds the settings flags to a command. Flags win over the environment and the config file. */
export function withSettingsOptions(command: Command): Command {
  return command
    .addOption(new Option('--config <file>', 'JSON config file (env: LATCHKEY_CONFIG)'))
    .addOption(new Option('--host <host>', 'address to listen on (env: LATCHKEY_HOST, default 127.0.0.1)'))
    .addOption(new Option('--port <port>', 'port to listen on (env: LATCHKEY_PORT, default 4400)'))
    .addOption(new Option('--data-dir <dir>', 'data directory (env: LATCHKEY_DATA_DIR, default ./data)'))
    .addOption(
      new Option('--database-url <url>', 'postgres:// URL; unset: SQLite in the data dir (env: LATCHKEY_DATABASE_URL)'),
    )
    .addOption(new Option('--key-file <file>', 'master key file (env: LATCHKEY_KEY_FILE)'))
    .addOption(new Option('--public-url <url>', 'URL users reach this server at (env: LATCHKEY_PUBLIC_URL)'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env: LATCHKEY_LOG_LEVEL)'))
    .addOption(new Option('--shutdown-timeout <duration>', 'bound on draining requests at shutdown (env: LATCHKEY_SHUTDOWN_TIMEOUT)'))
    .addOption(new Option('--cache-bound <duration>', 'most time a change made elsewhere may go unseen (env: LATCHKEY_CACHE_BOUND, default 5s)'))
    .addOption(
      new Option('--trust-proxy <list>', 'proxy addresses or CIDRs whose X-Forwarded-For names the client (env: LATCHKEY_TRUST_PROXY, default none)'),
    );
}

/** Settings from this command's flags, the environment and the config file. */
export function settingsFrom(command: Command): Settings {
  const opts = command.opts<Record<string, unknown>>();
  const flags: Record<string, unknown> = { ...opts };
  if (opts['shutdownTimeout'] !== undefined) flags['shutdownTimeoutMs'] = opts['shutdownTimeout'];
  delete flags['shutdownTimeout'];
  if (opts['cacheBound'] !== undefined) flags['cacheBoundMs'] = opts['cacheBound'];
  delete flags['cacheBound'];
  return loadSettings({ flags, env: process.env });
}
