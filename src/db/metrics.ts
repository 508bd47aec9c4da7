import { Gauge, type Registry } from 'prom-client';
import type { DatabaseHandle } from './adapter.js';

/** Pool gauges (`state`: total | idle | waiting), read from the handle at each scrape. */
export function registerDatabaseMetrics(registry: Registry, handle: DatabaseHandle): void {
  new Gauge({
    name: 'latchkey_db_pool_connections',
    help: 'Database connections by state (SQLite: one embedded connection).',
    labelNames: ['dialect', 'state'] as const,
    registers: [registry],
    collect() {
      const stats = handle.poolStats();
      this.set({ dialect: handle.dialect, state: 'total' }, stats.total);
      this.set({ dialect: handle.dialect, state: 'idle' }, stats.idle);
      this.set({ dialect: handle.dialect, state: 'waiting' }, stats.waiting);
    },
  });
}
