import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LevelCheck = { isLevelEnabled?: (level: string) => boolean };

/**
 * `request.log` that becomes a pino child only when something is logged through it. A pino child
 * runs the redaction over its bindings when it is made, which costs more than the rest of a
 * cached API key check; most requests log nothing through `request.log` (the completed line is
 * written by the app logger), so most never pay it.
 */
class LazyRequestLogger {
  readonly #parent: FastifyBaseLogger & LevelCheck;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger & LevelCheck, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  fatal(...args: unknown[]): void {
    this.#log('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#log('error', args);
  }

  warn(...args: unknown[]): void {
    this.#log('warn', args);
  }

  info(...args: unknown[]): void {
    this.#log('info', args);
  }

  debug(...args: unknown[]): void {
    this.#log('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#log('trace', args);
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }

  #log(level: Level, args: unknown[]): void {
    if (this.#child === undefined && this.#parent.isLevelEnabled?.(level) === false) return;
    (this.#real()[level] as (...rest: unknown[]) => void)(...args);
  }
}

/**
 * Fastify `childLoggerFactory`: a lazy child per request (a plain one when the route sets its
 * own log level).
 *
 * @example
 * Fastify({ loggerInstance: logger, childLoggerFactory: requestChildLogger });
 */
export function requestChildLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const check = parent as FastifyBaseLogger & LevelCheck;
  if (options.level !== undefined || typeof check.isLevelEnabled !== 'function') return parent.child(bindings, options);
  return new LazyRequestLogger(check, bindings, options) as unknown as FastifyBaseLogger;
}
