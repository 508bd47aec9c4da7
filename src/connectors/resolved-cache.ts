import type { InvalidationBus } from '../db/index.js';

/**
 * This process's decrypted connectors, so a proxied call or a credential handout does not read and
 * decrypt the connector row every time. A change (update, delete) is announced on the invalidation
 * bus in its transaction: this process drops the entry at once, others when they hear it, and at
 * the latest after the bus's bound (entries expire then). A value read across an invalidation is
 * not kept, so a refill racing an update cannot bring the old secrets back. Bounded: past
 * `maxEntries` the oldest entry goes.
 */
export class ResolvedConnectorCache<T> {
  readonly #bus: InvalidationBus;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: T; expiresAtMs: number }>();
  readonly #unsubscribe: () => void;

  constructor(bus: InvalidationBus, maxEntries = 1000) {
    this.#bus = bus;
    this.#maxEntries = maxEntries;
    this.#unsubscribe = bus.subscribe((inv) => {
      if (inv.scope === 'connector' && inv.subjectId !== null) this.#entries.delete(key(inv.tenantId, inv.subjectId));
      else if (inv.scope === 'tenant' && inv.subjectId === null) this.dropTenant(inv.tenantId);
    });
  }

  /** The cached value, or what `load` answers (kept unless an invalidation arrived meanwhile). */
  async get(tenantId: string, id: string, load: () => Promise<T>): Promise<T> {
    const k = key(tenantId, id);
    const hit = this.#entries.get(k);
    const now = Date.now();
    if (hit !== undefined && now < hit.expiresAtMs) return hit.value;
    if (hit !== undefined) this.#entries.delete(k);
    const generation = this.#bus.generation;
    const value = await load();
    if (this.#bus.generation === generation) {
      if (this.#entries.size >= this.#maxEntries) {
        const oldest = this.#entries.keys().next();
        if (!oldest.done) this.#entries.delete(oldest.value);
      }
      this.#entries.set(k, { value, expiresAtMs: now + this.#bus.boundMs });
    }
    return value;
  }

  dropTenant(tenantId: string): void {
    const prefix = `${tenantId}\n`;
    for (const k of this.#entries.keys()) if (k.startsWith(prefix)) this.#entries.delete(k);
  }

  close(): void {
    this.#unsubscribe();
    this.#entries.clear();
  }
}

function key(tenantId: string, id: string): string {
  return `${tenantId}\n${id}`;
}
