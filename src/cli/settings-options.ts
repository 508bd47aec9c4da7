import { Option, type Command } from 'commander';
import { loadSettings, type Settings } from '../core/index.js';

/** Every settings flag, by the setting it sets. */
const SETTING_FLAGS = {
  config: () => new Option('--config <file>', 'JSON config file (env: LATCHKEY_CONFIG)'),
  host: () => new Option('--host <host>', 'address to listen on (env: LATCHKEY_HOST, default 127.0.0.1)'),
  port: () => new Option('--port <port>', 'port to listen on (env: LATCHKEY_PORT, default 4400)'),
  dataDir: () => new Option('--data-dir <dir>', 'data directory (env: LATCHKEY_DATA_DIR, default ./data)'),
  databaseUrl: () => new Option('--database-url <url>', 'postgres:// URL; unset: SQLite in the data dir (env: LATCHKEY_DATABASE_URL)'),
  keyFile: () => new Option('--key-file <file>', 'master key file (env: LATCHKEY_KEY_FILE)'),
  publicUrl: () => new Option('--public-url <url>', 'URL users reach this server at (env: LATCHKEY_PUBLIC_URL)'),
  logLevel: () => new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env: LATCHKEY_LOG_LEVEL)'),
  shutdownTimeout: () => new Option('--shutdown-timeout <duration>', 'bound on draining requests at shutdown (env: LATCHKEY_SHUTDOWN_TIMEOUT)'),
  cacheBound: () => new Option('--cache-bound <duration>', 'most time a change made elsewhere may go unseen (env: LATCHKEY_CACHE_BOUND, default 5s)'),
  allowInsecureLoopback: () =>
    new Option('--allow-insecure-loopback', 'UNSAFE, development only: plain http to OAuth servers on 127.0.0.0/8, localhost, [::1] (env: LATCHKEY_ALLOW_INSECURE_LOOPBACK)'),
  trustProxy: () => new Option('--trust-proxy <list>', 'proxy addresses or CIDRs whose X-Forwarded-For names the client (env: LATCHKEY_TRUST_PROXY, default none)'),
  egressAllow: () =>
    new Option('--egress-allow <list>', 'CIDRs and host names outbound requests may reach besides public addresses (env: LATCHKEY_EGRESS_ALLOW, default none)'),
  taskCredentialType: () => new Option('--task-credential-type <type>', 'native|external: the credential tasks that run as a user use (env: LATCHKEY_TASK_CREDENTIAL_TYPE, default native)'),
  taskCredentialIssuerUrl: () => new Option('--task-credential-issuer-url <url>', 'external issuer tasks are also granted credentials from (env: LATCHKEY_TASK_CREDENTIAL_ISSUER_URL)'),
  taskCredentialIssuerSecret: () => new Option('--task-credential-issuer-secret <secret>', 'whsec_… secret requests to the issuer are signed with (env: LATCHKEY_TASK_CREDENTIAL_ISSUER_SECRET)'),
  invalidationInterval: () => new Option('--invalidation-interval <duration>', 'how often removed tasks\' credentials are invalidated (env: LATCHKEY_INVALIDATION_INTERVAL, default 5m)'),
  invalidationDelay: () => new Option('--invalidation-delay <duration>', 'how long a removed task\'s credential waits before it is invalidated (env: LATCHKEY_INVALIDATION_DELAY, default 1h)'),
  taskLease: () => new Option('--task-lease <duration>', 'how long a task claim lasts without a heartbeat; a task whose process died runs again after it (env: LATCHKEY_TASK_LEASE, default 30s)'),
  taskHeartbeat: () => new Option('--task-heartbeat <duration>', "how often a running task's lease is extended, below the lease (env: LATCHKEY_TASK_HEARTBEAT, default 10s)"),
  taskConcurrency: () => new Option('--task-concurrency <n>', 'tasks this process runs at once (env: LATCHKEY_TASK_CONCURRENCY, default 10)'),
  outboundConcurrency: () => new Option('--outbound-concurrency <n>', "proxied calls this process has in flight at once to one connector's API; more wait in order (env: LATCHKEY_OUTBOUND_CONCURRENCY, default 10)"),
} as const;

/** Flags whose setting is a duration in milliseconds (`<name>Ms`). */
const DURATION_FLAGS = new Set(['shutdownTimeout', 'cacheBound', 'invalidationInterval', 'invalidationDelay', 'taskLease', 'taskHeartbeat']);

export type SettingFlag = keyof typeof SETTING_FLAGS;

/** What every command that opens the database reads. */
export const DATABASE_SETTINGS: readonly SettingFlag[] = ['config', 'dataDir', 'databaseUrl', 'keyFile', 'logLevel'];
/** What `serve` reads besides. */
export const SERVER_SETTINGS: readonly SettingFlag[] = [
  ...DATABASE_SETTINGS,
  'host',
  'port',
  'publicUrl',
  'shutdownTimeout',
  'cacheBound',
  'allowInsecureLoopback',
  'trustProxy',
  'egressAllow',
  'taskCredentialType',
  'taskCredentialIssuerUrl',
  'taskCredentialIssuerSecret',
  'invalidationInterval',
  'invalidationDelay',
  'taskLease',
  'taskHeartbeat',
  'taskConcurrency',
  'outboundConcurrency',
];

/**
 * Adds the flags of the settings a command uses, and only those, so its `--help` lists what
 * changes its behaviour. Flags win over the environment and the config file.
 */
export function withSettingsOptions(command: Command, uses: readonly SettingFlag[]): Command {
  for (const name of uses) command.addOption(SETTING_FLAGS[name]());
  return command;
}

/** Settings from this command's flags, the environment and the config file. */
export function settingsFrom(command: Command): Settings {
  const opts = command.opts<Record<string, unknown>>();
  const flags: Record<string, unknown> = {};
  for (const name of Object.keys(SETTING_FLAGS)) {
    if (opts[name] === undefined) continue;
    // Durations are settings in milliseconds.
    flags[DURATION_FLAGS.has(name) ? `${name}Ms` : name] = opts[name];
  }
  return loadSettings({ flags, env: process.env });
}
