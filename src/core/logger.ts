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
  'req.headers["x-latchkey-csrf"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["x-latchkey-csrf"]',
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

// pino's isoTime formats a Date for every line; the second changes far less often than lines are
// written, so its text is kept and only the milliseconds are written each time.
let cachedSecond = -1;
let cachedPrefix = '';

/** `,"time":"2026-12-02T09:26:24.571Z"`, as pino.stdTimeFunctions.isoTime writes it. */
export function isoTime(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  return `,"time":"${cachedPrefix}${String(now - second * 1000).padStart(3, '0')}Z"`;
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
      timestamp: isoTime,
      base: { pid: process.pid },
    },
    options.destination ?? stdoutDestination(),
  );
}

/** Bytes of lines gathered before a write, as pino's asynchronous logging documents. */
const LOG_BUFFER_BYTES = 4096;
/** In quiet times, what is gathered is written at the latest this long after it was logged. */
const LOG_FLUSH_MS = 100;

/**
 * Asynchronous writes to stdout (sonic-boom), gathered: lines wait until 4 KiB are pending (or
 * 100 ms passed) and go out in one write on the thread pool, and pino flushes what is left when
 * the process exits. Writing as soon as the last write ended cost a request line 3 to 16 µs under
 * load, most of it the thread pool's round trip for a write of one or two lines; gathered, `/healthz`
 * took 14% less CPU (bench/http-ab.ts). Each line is handed over as bytes: in its text mode
 * sonic-boom measures the whole pending text again for every line it appends.
 */
function stdoutDestination(): DestinationStream {
  // sonic-boom's own periodic flush (an unref'd timer; in quiet times a write of nothing): a
  // flush that meets a write in flight is skipped, and the next tick writes what is left.
  const boom = pino.destination({ dest: 1, sync: false, contentMode: 'buffer', minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  const bytes = boom as unknown as { write(line: Buffer): boolean };
  return {
    write: (line: string) => bytes.write(Buffer.from(line, 'utf8')),
    flush: (done?: (err?: Error) => void) => boom.flush(done),
    flushSync: () => boom.flushSync(),
  } as DestinationStream;
}
