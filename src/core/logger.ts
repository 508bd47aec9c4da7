import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names that hold secrets wherever they appear in a log object. */
export const SECRET_FIELDS = [
  'password',
  'secret',
  'secrets',
  'token',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'id_token',
  'idToken',
  'clientSecret',
  'client_secret',
  'apiKey',
  'key',
  'encryptionKey',
  'masterKey',
  'dataKey',
  'plaintext',
  'codeVerifier',
  'code_verifier',
  'pepper',
  'apiKeyValue',
] as const;

/**
 * pino redaction paths, fixed at start-up: the credential-bearing headers and every secret field
 * at the top level (which also covers child-logger bindings); nested fields are redacted by name
 * in the log formatter below.
 */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  ...SECRET_FIELDS,
];

const SECRET_NAMES: ReadonlySet<string> = new Set(SECRET_FIELDS);
const MAX_DEPTH = 4;

/**
 * Replaces every secret field (by name, at any depth up to four levels) with "[redacted]". Copies
 * only what it changes. pino's own wildcard paths (`*.*.token`) cost about 30 µs a line for this
 * list, more than the rest of a request; this walk costs well under one for a typical line.
 */
function redactSecrets(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object' || value instanceof Error) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const out = redactSecrets(item, depth + 1);
      if (out !== item) (copy ??= [...value])[i] = out;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [name, item] of Object.entries(value)) {
    const out = SECRET_NAMES.has(name) ? '[redacted]' : redactSecrets(item, depth + 1);
    if (out !== item) (copy ??= { ...(value as Record<string, unknown>) })[name] = out;
  }
  return copy ?? value;
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  destination?: DestinationStream;
  name?: string;
}

/**
 * The process logger: JSON lines through pino, with authorization headers, cookies and every
 * secret field (by name, up to four levels deep) replaced by "[redacted]".
 *
 * @example
 * const log = createLogger({ level: 'info' });
 * log.info({ clientSecret: 's3cr3t' }, 'connector saved'); // clientSecret is "[redacted]"
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'latchkey',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: {
        log: (object) => redactSecrets(object, 0) as Record<string, unknown>,
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    options.destination,
  );
}
