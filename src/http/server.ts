import type { FastifyInstance } from 'fastify';
import { ConfigError, type Logger } from '../core/index.js';

export interface ListenOptions {
  host: string;
  port: number;
  /** After this long, connections still open are destroyed and shutdown goes on. */
  shutdownTimeoutMs: number;
  /** Runs after the server has closed (close the database here). */
  onClose?: () => Promise<void>;
  logger: Logger;
  /** Signals that start a graceful shutdown; SIGTERM and SIGINT unless given. */
  signals?: NodeJS.Signals[];
}

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:8080`. */
  address: string;
  /** Starts the shutdown (once) and resolves when it is complete. */
  close(): Promise<void>;
  /** Resolves when shutdown completes, whether started by a signal or by `close()`. */
  closed: Promise<void>;
}

/** How long to wait for fastify to finish closing once the remaining sockets are destroyed. */
const AFTER_FORCE_MS = 1000;

/**
 * Listens, and on a shutdown signal stops accepting connections, lets requests in flight finish
 * (bounded by `shutdownTimeoutMs`), then runs `onClose`. It never exits the process: the caller
 * awaits `closed` and exits.
 *
 * @example
 * const server = await listenWithShutdown(app, { host: '0.0.0.0', port: 8080, shutdownTimeoutMs: 10_000, logger, onClose: () => db.destroy() });
 * await server.closed;
 * process.exitCode = 0;
 */
export async function listenWithShutdown(app: FastifyInstance, opts: ListenOptions): Promise<RunningServer> {
  const { logger } = opts;
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  let address: string;
  try {
    address = await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    throw listenError(err, opts);
  }

  let shutdown: Promise<void> | undefined;
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const closed = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Whoever awaits `closed` still sees a failure; nobody awaiting it must not crash the process.
  closed.catch(() => undefined);

  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutdown signal received; draining requests');
    void close();
  };

  function close(): Promise<void> {
    shutdown ??= drain().then(settle.resolve, settle.reject);
    return closed;
  }

  async function drain(): Promise<void> {
    for (const signal of signals) process.removeListener(signal, onSignal);
    await closeServer(app, opts.shutdownTimeoutMs, logger);
    if (opts.onClose) await opts.onClose();
    logger.info('shutdown complete');
  }

  for (const signal of signals) process.on(signal, onSignal);
  logger.info({ address }, 'listening');
  return { address, close, closed };
}

async function closeServer(app: FastifyInstance, timeoutMs: number, logger: Logger): Promise<void> {
  let forced: NodeJS.Timeout | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    forced = setTimeout(() => {
      logger.warn({ timeoutMs }, 'shutdown timeout reached; closing remaining connections');
      app.server.closeAllConnections();
      giveUp = setTimeout(resolve, AFTER_FORCE_MS);
    }, timeoutMs);
  });
  try {
    await Promise.race([app.close(), deadline]);
  } finally {
    clearTimeout(forced);
    clearTimeout(giveUp);
  }
}

/** A socket that cannot be bound is a setting to change: the error names it. */
function listenError(err: unknown, opts: { host: string; port: number }): unknown {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return new ConfigError(`Port ${opts.port} on ${opts.host} is already in use; choose another with --port or LATCHKEY_PORT.`, { cause: err });
    case 'EACCES':
      return new ConfigError(`This process may not listen on port ${opts.port}; choose a port above 1023 with --port or LATCHKEY_PORT.`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new ConfigError(`${opts.host} is not an address of this machine; choose another with --host or LATCHKEY_HOST.`, { cause: err });
    default:
      return err;
  }
}
