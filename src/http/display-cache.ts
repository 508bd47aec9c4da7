import type { ApiKeys } from '../apikeys/index.js';
import type { InvalidationBus } from '../db/index.js';
import type { Identity } from '../identity/index.js';

export interface DisplayCacheOptions {
  identity: Identity;
  apiKeys: ApiKeys;
  /** Started by the caller; its invalidations drop entries, and entries live at most its bound. */
  bus: InvalidationBus;
  /** Most tenants kept (default 10,000); the oldest filled goes first. */
  maxTenants?: number;
  /** Most users and most keys kept per tenant (default 10,000 each). */
  maxPerTenant?: number;
}

/** What `GET /me` shows of a key besides its id. */
export interface KeyLabel {
  name: string;
  masked: string;
}

interface Slot<V> {
  value: V;
  /** Date.now() after which the slot is not used. */
  staleAt: number;
}

interface TenantSlots {
  tenant: Slot<{ name: string; system: boolean }> | undefined;
  users: Map<string, Slot<string>>;
  keys: Map<string, Slot<KeyLabel>>;
}

/**
 * Names the HTTP layer shows next to ids (tenant names, usernames, key names and masked forms),
 * cached per process so that the hot `GET /api/v1/me` reads nothing from the database. Entries
 * are dropped by the invalidation bus (`api_key`, `user`, `tenant` scopes) and expire after the
 * bus bound in any case; a value read across an invalidation is returned but not kept. Tenant
 * renames publish no invalidation: another process may show the old name for up to the bound.
 *
 * @example
 * const display = new DisplayCache({ identity, apiKeys, bus });
 * await display.tenantName(principal.tenantId); // 'acme'
 * display.close();
 */
export class DisplayCache {
  readonly #identity: Identity;
  readonly #apiKeys: ApiKeys;
  readonly #bus: InvalidationBus;
  readonly #maxTenants: number;
  readonly #maxPerTenant: number;
  readonly #tenants = new Map<string, TenantSlots>();
  readonly #unsubscribe: () => void;

  constructor(options: DisplayCacheOptions) {
    this.#identity = options.identity;
    this.#apiKeys = options.apiKeys;
    this.#bus = options.bus;
    this.#maxTenants = options.maxTenants ?? 10_000;
    this.#maxPerTenant = options.maxPerTenant ?? 10_000;
    this.#unsubscribe = options.bus.subscribe((inv) => {
      if (inv.scope === 'tenant' || inv.subjectId === null) this.dropTenant(inv.tenantId);
      else if (inv.scope === 'user') this.#tenants.get(inv.tenantId)?.users.delete(inv.subjectId);
      else if (inv.scope === 'api_key') this.#tenants.get(inv.tenantId)?.keys.delete(inv.subjectId);
    });
  }

  /** The tenant's name (not_found when the tenant does not exist). */
  async tenantName(tenantId: string): Promise<string> {
    return (await this.#tenant(tenantId)).name;
  }

  /** Whether the tenant is the system tenant (marked in the database; its name says nothing). */
  async isSystemTenant(tenantId: string): Promise<boolean> {
    return (await this.#tenant(tenantId)).system;
  }

  async #tenant(tenantId: string): Promise<{ name: string; system: boolean }> {
    const hit = fresh(this.#tenants.get(tenantId)?.tenant);
    if (hit !== undefined) return hit;
    const generation = this.#bus.generation;
    const { name, system } = await this.#identity.tenants.get(tenantId);
    if (this.#bus.generation === generation) this.#slots(tenantId).tenant = this.#slot({ name, system });
    return { name, system };
  }

  /** The user's username (not_found when there is no such user in the tenant). */
  async username(tenantId: string, userId: string): Promise<string> {
    const hit = fresh(this.#tenants.get(tenantId)?.users.get(userId));
    if (hit !== undefined) return hit;
    const generation = this.#bus.generation;
    const { username } = await this.#identity.users.get(tenantId, userId);
    if (this.#bus.generation === generation) this.#keep(this.#slots(tenantId).users, userId, username);
    return username;
  }

  /** The key's name and masked form (not_found when there is no such key in the tenant). */
  async keyLabel(tenantId: string, keyId: string): Promise<KeyLabel> {
    const hit = fresh(this.#tenants.get(tenantId)?.keys.get(keyId));
    if (hit !== undefined) return hit;
    const generation = this.#bus.generation;
    const view = await this.#apiKeys.service.get(tenantId, keyId);
    const label: KeyLabel = { name: view.name, masked: view.masked };
    if (this.#bus.generation === generation) this.#keep(this.#slots(tenantId).keys, keyId, label);
    return label;
  }

  /**
   * The names `GET /me` shows, read synchronously when every one of them is cached and fresh;
   * undefined otherwise (then ask {@link tenantName}, {@link username} and {@link keyLabel}). The
   * hot path pays no promise for a warm request.
   */
  peekMe(tenantId: string, userId: string, keyId: string | undefined): { tenantName: string; username: string; key: KeyLabel | undefined } | undefined {
    const slots = this.#tenants.get(tenantId);
    const tenant = fresh(slots?.tenant);
    const username = fresh(slots?.users.get(userId));
    if (tenant === undefined || username === undefined) return undefined;
    if (keyId === undefined) return { tenantName: tenant.name, username, key: undefined };
    const key = fresh(slots?.keys.get(keyId));
    return key === undefined ? undefined : { tenantName: tenant.name, username, key };
  }

  /** Forgets everything about a tenant (this process renamed or deleted it). */
  dropTenant(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }

  close(): void {
    this.#unsubscribe();
    this.#tenants.clear();
  }

  #slot<V>(value: V): Slot<V> {
    return { value, staleAt: Date.now() + this.#bus.boundMs };
  }

  #keep<V>(map: Map<string, Slot<V>>, id: string, value: V): void {
    if (map.size >= this.#maxPerTenant) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(id, this.#slot(value));
  }

  #slots(tenantId: string): TenantSlots {
    let slots = this.#tenants.get(tenantId);
    if (slots === undefined) {
      if (this.#tenants.size >= this.#maxTenants) {
        const oldest = this.#tenants.keys().next();
        if (!oldest.done) this.#tenants.delete(oldest.value);
      }
      slots = { tenant: undefined, users: new Map(), keys: new Map() };
      this.#tenants.set(tenantId, slots);
    }
    return slots;
  }
}

function fresh<V>(slot: Slot<V> | undefined): V | undefined {
  return slot !== undefined && Date.now() <= slot.staleAt ? slot.value : undefined;
}
