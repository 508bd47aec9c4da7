import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Prometheus registry of one Latchkey instance and the counters shared across modules.
 * One registry per instance (not prom-client's global), so tests and embedded use never collide.
 * Labels never carry ids or secrets: only bounded enums.
 */
export interface Metrics {
  registry: Registry;
  /** `op`: encrypt | decrypt | wrap | unwrap; `outcome`: ok | error. */
  cryptoOperations: Counter<'op' | 'outcome'>;
}

export function createMetrics(options: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });
  const cryptoOperations = new Counter({
    name: 'latchkey_crypto_operations_total',
    help: 'Encryption, decryption and key wrapping operations by outcome.',
    labelNames: ['op', 'outcome'] as const,
    registers: [registry],
  });
  return { registry, cryptoOperations };
}
