import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseDuration } from './duration.js';

/** Validated settings of one Latchkey process. Built once at start by {@link loadSettings}. */
export interface Settings {
  host: string;
  port: number;
  dataDir: string;
  /** Unset: SQLite at `<dataDir>/latchkey.db`. */
  databaseUrl: string | undefined;
  /** Primary master key, base64 of 32 bytes. */
  encryptionKey: string | undefined;
  /** Decryption-only master keys, base64 of 32 bytes each. */
  decryptionKeys: string[];
  keyFile: string | undefined;
  publicUrl: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownTimeoutMs: number;
  /** The most time a change made by another process (a revoked key, a lost role) may go unseen. */
  cacheBoundMs: number;
  /**
   * UNSAFE, for a local authorization server in development: requests to providers may use plain
   * http to loopback addresses (127.0.0.0/8, localhost, [::1]) and nothing else. Default false.
   */
  allowInsecureLoopback: boolean;
  /** Proxy addresses or CIDRs whose `X-Forwarded-For` names the client; empty: none is trusted. */
  trustProxy: string[];
  /**
   * CIDRs, addresses and host names outbound requests may reach besides public addresses (a
   * provider on a private network; `127.0.0.1/32` in tests). Empty: none.
   */
  egressAllow: string[];
  /** Which credential a task that runs as a user uses: its Latchkey API key, or the external issuer's (needs the issuer). */
  taskCredentialType: 'native' | 'external';
  /** The external credential issuer tasks are also granted credentials from; unset: none. */
  taskCredentialIssuerUrl: string | undefined;
  /** The shared secret (`whsec_…`) requests to the issuer are signed with. */
  taskCredentialIssuerSecret: string | undefined;
  /** How often removed tasks' credentials are invalidated. */
  invalidationIntervalMs: number;
  /** How long a removed task's credential waits before it is invalidated (a run holding it may finish). */
  invalidationDelayMs: number;
  /** How long a task claim lasts without a heartbeat; a task whose process died runs again after it (default 30 s). */
  taskLeaseMs: number;
  /** How often a running task's lease is extended (default 10 s; below the lease). */
  taskHeartbeatMs: number;
  /** Tasks one process runs at once (default 10). */
  taskConcurrency: number;
  /** Proxied calls one process has in flight at once to one connector's API; more wait in order (default 10). */
  outboundConcurrency: number;
  configFile: string | undefined;
}

type Source = 'flag' | 'env' | 'file' | 'default';

interface Definition<T> {
  flag: string;
  env: string;
  /** Key in the config file. */
  file: string;
  accepts: string;
  /** Never echo the raw value in an error. */
  secret?: boolean;
  /** Not a command-line flag (other users can read a process's arguments): environment or config file only. */
  noFlag?: boolean;
  parse: z.ZodType<T>;
}

const base64Key = z
  .string()
  .trim()
  .refine((s) => /^[A-Za-z0-9+/]{43}=$/.test(s) && Buffer.from(s, 'base64').length === 32);

/** A list as a JSON array or comma-separated text; blanks dropped. */
const commaList = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0));

/** A host name as DNS writes it (letters, digits, hyphens, underscores, dots). */
function isHostName(text: string): boolean {
  return /^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/.test(text);
}

/** An IPv4 or IPv6 address, or one with a `/prefix` (CIDR). */
function isAddressOrCidr(text: string): boolean {
  const [address = '', prefix, ...rest] = text.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/** A whole number, or its digits as text, within [min, max]. */
function wholeNumberBetween(min: number, max: number): z.ZodType<number> {
  return z
    .union([z.number(), z.string().trim().regex(/^\d+$/)])
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** A duration as `"10m"` or milliseconds, within [min, max]. */
function durationBetween(min: number, max: number): z.ZodType<number> {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const parsed = parseDuration(v);
    if (parsed === undefined || parsed < min || parsed > max) {
      ctx.addIssue({ code: 'custom', message: 'out of range' });
      return z.NEVER;
    }
    return parsed;
  });
}

const DEFINITIONS = {
  host: {
    flag: '--host',
    env: 'LATCHKEY_HOST',
    file: 'host',
    accepts: 'a host name or IP address',
    parse: z.string().trim().regex(/^[A-Za-z0-9.:\-[\]]+$/),
  },
  port: {
    flag: '--port',
    env: 'LATCHKEY_PORT',
    file: 'port',
    accepts: 'a port number (1-65535)',
    parse: wholeNumberBetween(1, 65535),
  },
  dataDir: {
    flag: '--data-dir',
    env: 'LATCHKEY_DATA_DIR',
    file: 'dataDir',
    accepts: 'a directory path',
    parse: z.string().trim().min(1),
  },
  databaseUrl: {
    flag: '--database-url',
    env: 'LATCHKEY_DATABASE_URL',
    file: 'databaseUrl',
    accepts: 'a postgres:// or postgresql:// URL (leave it unset for SQLite in the data directory)',
    secret: true,
    parse: z
      .string()
      .trim()
      .refine((s) => /^postgres(ql)?:\/\/./.test(s) && URL.canParse(s)),
  },
  encryptionKey: {
    flag: '--encryption-key',
    env: 'LATCHKEY_ENCRYPTION_KEY',
    file: 'encryptionKey',
    accepts: '32 bytes encoded as base64 (make one with `latchkey keygen`)',
    secret: true,
    noFlag: true,
    parse: base64Key,
  },
  decryptionKeys: {
    flag: '--decryption-keys',
    env: 'LATCHKEY_DECRYPTION_KEYS',
    file: 'decryptionKeys',
    accepts: 'a comma-separated list of 32-byte base64 keys',
    secret: true,
    noFlag: true,
    parse: commaList.pipe(z.array(base64Key)),
  },
  keyFile: {
    flag: '--key-file',
    env: 'LATCHKEY_KEY_FILE',
    file: 'keyFile',
    accepts: 'a file path',
    parse: z.string().trim().min(1),
  },
  publicUrl: {
    flag: '--public-url',
    env: 'LATCHKEY_PUBLIC_URL',
    file: 'publicUrl',
    accepts: 'an absolute http:// or https:// URL',
    parse: z
      .string()
      .trim()
      .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol))
      .transform((s) => s.replace(/\/+$/, '')),
  },
  logLevel: {
    flag: '--log-level',
    env: 'LATCHKEY_LOG_LEVEL',
    file: 'logLevel',
    accepts: 'one of fatal, error, warn, info, debug, trace, silent',
    parse: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  },
  shutdownTimeoutMs: {
    flag: '--shutdown-timeout',
    env: 'LATCHKEY_SHUTDOWN_TIMEOUT',
    file: 'shutdownTimeout',
    accepts: 'a duration such as "10s" or a number of milliseconds',
    parse: z.union([z.string(), z.number()]).transform((v, ctx) => {
      const parsed = parseDuration(v);
      if (parsed === undefined) {
        ctx.addIssue({ code: 'custom', message: 'not a duration' });
        return z.NEVER;
      }
      return parsed;
    }),
  },
  cacheBoundMs: {
    flag: '--cache-bound',
    env: 'LATCHKEY_CACHE_BOUND',
    file: 'cacheBound',
    accepts: 'a duration from 100ms to 60s, such as "5s"',
    parse: z.union([z.string(), z.number()]).transform((v, ctx) => {
      const parsed = parseDuration(v);
      if (parsed === undefined || parsed < 100 || parsed > 60_000) {
        ctx.addIssue({ code: 'custom', message: 'not a bound' });
        return z.NEVER;
      }
      return parsed;
    }),
  },
  allowInsecureLoopback: {
    flag: '--allow-insecure-loopback',
    env: 'LATCHKEY_ALLOW_INSECURE_LOOPBACK',
    file: 'allowInsecureLoopback',
    accepts: 'true or false (1 or 0)',
    parse: z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]),
  },
  trustProxy: {
    flag: '--trust-proxy',
    env: 'LATCHKEY_TRUST_PROXY',
    file: 'trustProxy',
    accepts: 'a comma-separated list of proxy IP addresses or CIDRs (such as "10.0.0.0/8,::1")',
    parse: commaList.pipe(z.array(z.string().refine(isAddressOrCidr))),
  },
  egressAllow: {
    flag: '--egress-allow',
    env: 'LATCHKEY_EGRESS_ALLOW',
    file: 'egressAllow',
    accepts: 'a comma-separated list of CIDRs, IP addresses and host names outbound requests may reach besides public addresses (such as "10.1.0.0/16,idp.internal")',
    parse: commaList.pipe(z.array(z.string().refine((s) => isAddressOrCidr(s) || (isIP(s) === 0 && !s.includes('/') && !/^[\d.]+$/.test(s) && isHostName(s))))),
  },
  taskCredentialType: {
    flag: '--task-credential-type',
    env: 'LATCHKEY_TASK_CREDENTIAL_TYPE',
    file: 'taskCredentialType',
    accepts: 'native or external',
    parse: z.enum(['native', 'external']),
  },
  taskCredentialIssuerUrl: {
    flag: '--task-credential-issuer-url',
    env: 'LATCHKEY_TASK_CREDENTIAL_ISSUER_URL',
    file: 'taskCredentialIssuerUrl',
    accepts: 'an absolute http:// or https:// URL',
    parse: z
      .string()
      .trim()
      .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol))
      .transform((s) => s.replace(/\/+$/, '')),
  },
  taskCredentialIssuerSecret: {
    flag: '--task-credential-issuer-secret',
    env: 'LATCHKEY_TASK_CREDENTIAL_ISSUER_SECRET',
    file: 'taskCredentialIssuerSecret',
    accepts: '"whsec_" followed by the base64 of at least 24 random bytes',
    secret: true,
    parse: z
      .string()
      .trim()
      .refine((s) => /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s.slice(6), 'base64').length >= 24),
  },
  invalidationIntervalMs: {
    flag: '--invalidation-interval',
    env: 'LATCHKEY_INVALIDATION_INTERVAL',
    file: 'invalidationInterval',
    accepts: 'a duration from 1s to 24h, such as "5m"',
    parse: durationBetween(1000, 24 * 3600_000),
  },
  invalidationDelayMs: {
    flag: '--invalidation-delay',
    env: 'LATCHKEY_INVALIDATION_DELAY',
    file: 'invalidationDelay',
    accepts: 'a duration from 0s to 30d, such as "1h"',
    parse: durationBetween(0, 30 * 24 * 3600_000),
  },
  taskLeaseMs: {
    flag: '--task-lease',
    env: 'LATCHKEY_TASK_LEASE',
    file: 'taskLease',
    accepts: 'a duration from 1s to 1h, such as "30s"',
    parse: durationBetween(1000, 3600_000),
  },
  taskHeartbeatMs: {
    flag: '--task-heartbeat',
    env: 'LATCHKEY_TASK_HEARTBEAT',
    file: 'taskHeartbeat',
    accepts: 'a duration from 100ms to 30m, such as "10s"',
    parse: durationBetween(100, 30 * 60_000),
  },
  taskConcurrency: {
    flag: '--task-concurrency',
    env: 'LATCHKEY_TASK_CONCURRENCY',
    file: 'taskConcurrency',
    accepts: 'a whole number from 1 to 1000',
    parse: wholeNumberBetween(1, 1000),
  },
  outboundConcurrency: {
    flag: '--outbound-concurrency',
    env: 'LATCHKEY_OUTBOUND_CONCURRENCY',
    file: 'outboundConcurrency',
    accepts: 'a whole number from 1 to 1000',
    parse: wholeNumberBetween(1, 1000),
  },
} satisfies Record<string, Definition<unknown>>;

/** The settings table, for `--help` texts and the README. */
export const SETTING_DEFINITIONS: Readonly<Record<string, Omit<Definition<unknown>, 'parse'>>> = DEFINITIONS;

export interface SettingsInput {
  /** Parsed command-line flags, camelCased as commander gives them (`dataDir`, `port`...). */
  flags?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Working directory for relative paths. */
  cwd?: string;
}

function describeSource(def: Definition<unknown>, source: Source, configFile: string | undefined): string {
  if (source === 'flag') return def.flag;
  if (source === 'env') return def.env;
  return `"${def.file}" in ${configFile ?? 'the config file'}`;
}

function describeValue(def: Definition<unknown>, raw: unknown): string {
  if (def.secret) {
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw) ?? '';
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0];
    return scheme ? `a value starting with "${scheme}"` : `a value of ${text.length} characters`;
  }
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
  return JSON.stringify(text);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`The config file ${path} could not be read; check that it exists and is readable.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`The config file ${path} must be a JSON object, but it is not valid JSON.`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`The config file ${path} must be a JSON object.`);
  }
  const known = new Set(Object.values(DEFINITIONS).map((d) => d.file));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new ConfigError(`The config file ${path} has an unknown setting "${key}"; known settings are ${[...known].join(', ')}.`);
    }
  }
  return parsed as Record<string, unknown>;
}

/**
 * Builds the settings from flags, environment and an optional JSON config file (`--config` or
 * `LATCHKEY_CONFIG`), in that order of precedence, then defaults. Throws {@link ConfigError} with
 * one sentence naming the setting and what it accepts; secret values are never quoted.
 *
 * @example
 * loadSettings({ env: { LATCHKEY_PORT: '8080' } }).port // 8080
 */
export function loadSettings(input: SettingsInput = {}): Settings {
  const flags = input.flags ?? {};
  const env = input.env ?? {};
  const cwd = input.cwd ?? process.cwd();

  const configFlag = flags['config'];
  const configPath =
    typeof configFlag === 'string' && configFlag !== '' ? configFlag : env['LATCHKEY_CONFIG'] || undefined;
  const configFile = configPath ? resolve(cwd, configPath) : undefined;
  const file = configFile ? readConfigFile(configFile) : {};

  const values: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(DEFINITIONS) as [string, Definition<unknown>][]) {
    let raw: unknown;
    let source: Source = 'default';
    if (flags[name] !== undefined) {
      raw = flags[name];
      source = 'flag';
    } else if (env[def.env] !== undefined && env[def.env] !== '') {
      raw = env[def.env];
      source = 'env';
    } else if (file[def.file] !== undefined) {
      raw = file[def.file];
      source = 'file';
    }
    if (source === 'default') {
      values[name] = undefined;
      continue;
    }
    const result = def.parse.safeParse(raw);
    if (!result.success) {
      throw new ConfigError(
        `${describeSource(def, source, configFile)} must be ${def.accepts}, got ${describeValue(def, raw)}.`,
      );
    }
    values[name] = result.data;
  }

  const taskLeaseMs = (values['taskLeaseMs'] as number | undefined) ?? 30_000;
  // The default heartbeat follows a shorter lease: a third of it.
  const taskHeartbeatMs = (values['taskHeartbeatMs'] as number | undefined) ?? Math.min(10_000, Math.floor(taskLeaseMs / 3));
  if (taskHeartbeatMs >= taskLeaseMs) {
    throw new ConfigError(
      `The task heartbeat (${taskHeartbeatMs} ms, --task-heartbeat or LATCHKEY_TASK_HEARTBEAT) must be shorter than the task lease (${taskLeaseMs} ms, --task-lease or LATCHKEY_TASK_LEASE).`,
    );
  }

  const host = (values['host'] as string | undefined) ?? '127.0.0.1';
  const port = (values['port'] as number | undefined) ?? 4400;
  const dataDir = resolve(cwd, (values['dataDir'] as string | undefined) ?? './data');
  const keyFile = values['keyFile'] as string | undefined;
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;

  const settings: Settings = {
    host,
    port,
    dataDir,
    databaseUrl: values['databaseUrl'] as string | undefined,
    encryptionKey: values['encryptionKey'] as string | undefined,
    decryptionKeys: (values['decryptionKeys'] as string[] | undefined) ?? [],
    keyFile: keyFile ? resolve(cwd, keyFile) : undefined,
    publicUrl: (values['publicUrl'] as string | undefined) ?? `http://${urlHost}:${port}`,
    logLevel: (values['logLevel'] as Settings['logLevel'] | undefined) ?? 'info',
    shutdownTimeoutMs: (values['shutdownTimeoutMs'] as number | undefined) ?? 10_000,
    cacheBoundMs: (values['cacheBoundMs'] as number | undefined) ?? 5000,
    allowInsecureLoopback: (values['allowInsecureLoopback'] as boolean | undefined) ?? false,
    trustProxy: (values['trustProxy'] as string[] | undefined) ?? [],
    egressAllow: (values['egressAllow'] as string[] | undefined) ?? [],
    taskCredentialType: (values['taskCredentialType'] as Settings['taskCredentialType'] | undefined) ?? 'native',
    taskCredentialIssuerUrl: values['taskCredentialIssuerUrl'] as string | undefined,
    taskCredentialIssuerSecret: values['taskCredentialIssuerSecret'] as string | undefined,
    invalidationIntervalMs: (values['invalidationIntervalMs'] as number | undefined) ?? 5 * 60_000,
    invalidationDelayMs: (values['invalidationDelayMs'] as number | undefined) ?? 3600_000,
    taskLeaseMs,
    taskHeartbeatMs,
    taskConcurrency: (values['taskConcurrency'] as number | undefined) ?? 10,
    outboundConcurrency: (values['outboundConcurrency'] as number | undefined) ?? 10,
    configFile,
  };
  if ((settings.taskCredentialIssuerUrl === undefined) !== (settings.taskCredentialIssuerSecret === undefined)) {
    throw new ConfigError('The task credential issuer needs both --task-credential-issuer-url and --task-credential-issuer-secret (LATCHKEY_TASK_CREDENTIAL_ISSUER_URL and _SECRET), or neither.');
  }
  return settings;
}

/** One setting as the effective configuration shows it: a secret is only "set" or "not set". */
export interface SettingView {
  /** The key in the config file (`publicUrl`, `shutdownTimeout`); `configFile` for the config file itself. */
  name: string;
  /** The environment variable (`LATCHKEY_PUBLIC_URL`). */
  env: string;
  /** The command-line flag (`--public-url`); null for a master key, never taken as a flag. */
  flag: string | null;
  /** A secret's value is never shown: `value` is null and `set` says whether one is configured. */
  secret: boolean;
  set: boolean;
  /** The value in use, defaults applied; null for a secret or an unset setting. */
  value: string | number | boolean | string[] | null;
}

/**
 * The effective configuration, one entry per setting, with every secret's value left out: what
 * the console's settings page and `GET /settings` show.
 *
 * @example
 * describeSettings(loadSettings({ env: {} })).find((s) => s.name === 'port')?.value // 4400
 */
export function describeSettings(settings: Settings): SettingView[] {
  const views: SettingView[] = [];
  for (const [key, def] of Object.entries(DEFINITIONS) as [keyof Settings, Definition<unknown>][]) {
    const raw = settings[key];
    const set = Array.isArray(raw) ? raw.length > 0 : raw !== undefined;
    const secret = def.secret === true;
    const value = secret || raw === undefined ? null : Array.isArray(raw) ? [...raw] : raw;
    views.push({ name: def.file, env: def.env, flag: def.noFlag ? null : def.flag, secret, set, value });
  }
  const configFile = settings.configFile ?? null;
  views.push({ name: 'configFile', env: 'LATCHKEY_CONFIG', flag: '--config', secret: false, set: configFile !== null, value: configFile });
  return views;
}
