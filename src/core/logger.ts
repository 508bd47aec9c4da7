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

/** Redaction paths, fixed at start-up: headers plus every secret field up to three levels deep. */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  destination?: DestinationStream;
  name?: string;
}

/**
 * The process logger: JSON lines through pino, with authorization headers, cookies and every
 * secret field replaced by "[redacted]".
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
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    options.destination,
  );
}
