/**
 * A cache of values by tenant and key, with expiry, where a whole tenant's entries can be dropped
 * at once. Holds at most `maxEntries`; when full it starts over (a miss costs one read).
 */
export class TenantCache<V> {
  readonly #tenants = new Map<string, Map<string, { value: V; expiresAt: number }>>();
  readonly #maxEntries: number;
  #size = 0;

  constructor(maxEntries = 100_000) {
    this.#maxEntries = maxEntries;
  }

  get(tenantId: string, key: string, now: number): V | undefined {
    const entries = this.#tenants.get(tenantId);
    const entry = entries?.get(key);
    if (!entries || !entry) return undefined;
    if (entry.expiresAt > now) return entry.value;
    entries.delete(key);
    this.#size--;
    return undefined;
  }

  set(tenantId: string, key: string, value: V, expiresAt: number): void {
    if (this.#size >= this.#maxEntries) this.clear();
    let entries = this.#tenants.get(tenantId);
    if (!entries) this.#tenants.set(tenantId, (entries = new Map()));
    if (!entries.has(key)) this.#size++;
    entries.set(key, { value, expiresAt });
  }

  delete(tenantId: string, key: string): void {
    if (this.#tenants.get(tenantId)?.delete(key)) this.#size--;
  }

  dropTenant(tenantId: string): void {
    const entries = this.#tenants.get(tenantId);
    if (!entries) return;
    this.#size -= entries.size;
    this.#tenants.delete(tenantId);
  }

  clear(): void {
    this.#tenants.clear();
    this.#size = 0;
  }

  get size(): number {
    return this.#size;
  }
}
