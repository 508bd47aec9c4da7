import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface CachedAccessToken {
  accessToken: string;
  tokenType: string;
  expiresAt: string | null;
}

interface Entry {
  iv: Buffer;
  sealed: Buffer;
  tag: Buffer;
  tokenType: string;
  expiresAt: string | null;
  refreshAtMs: number;
  cachedAt: number;
}

/**
 * Access tokens this process handed out, kept for `ttlMs` so a hot path costs a Map lookup and one
 * AES-256-GCM decryption instead of a database read. Tokens are sealed under a random key that
 * never leaves the process, so a heap snapshot shows no token in clear next to its connector.
 *
 * The bound: a disconnect or reconnect done by another process is seen here after at most `ttlMs`
 * (this process's own disconnects and refreshes update the cache at once). A token is never served
 * from here once it is due for a refresh: the refresh path decides, exactly once.
 */
export class AccessTokenCache {
  readonly #key = randomBytes(32);
  /** By tenant and connector, then by user (`''` for none), so a connector is forgotten at once. */
  readonly #entries = new Map<string, Map<string, Entry>>();
  readonly #ttlMs: number;
  readonly #maxConnectors: number;
  /** Bumped by every forget: a read that began before one must not refill the cache after it. */
  #epoch = 0;

  constructor(ttlMs: number, maxConnectors = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxConnectors = maxConnectors;
  }

  get(tenantId: string, connectorId: string, userId: string | null | undefined, now: number): CachedAccessToken | undefined {
    const entry = this.#entries.get(`${tenantId}\n${connectorId}`)?.get(userId ?? '');
    if (!entry || now - entry.cachedAt >= this.#ttlMs || entry.refreshAtMs <= now) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', this.#key, entry.iv);
    decipher.setAuthTag(entry.tag);
    const accessToken = Buffer.concat([decipher.update(entry.sealed), decipher.final()]).toString('utf8');
    return { accessToken, tokenType: entry.tokenType, expiresAt: entry.expiresAt };
  }

  /** Pass to {@link set}: taken before the token is read. */
  get epoch(): number {
    return this.#epoch;
  }

  /** `refreshAtMs`: from then on the token is not served from here (see the token client's refresh margin). */
  set(tenantId: string, connectorId: string, userId: string | null | undefined, token: CachedAccessToken, refreshAtMs: number, now: number, epoch: number): void {
    if (epoch !== this.#epoch) return;
    const connector = `${tenantId}\n${connectorId}`;
    let users = this.#entries.get(connector);
    if (!users) {
      if (this.#entries.size >= this.#maxConnectors) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      users = new Map();
      this.#entries.set(connector, users);
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const sealed = Buffer.concat([cipher.update(token.accessToken, 'utf8'), cipher.final()]);
    users.set(userId ?? '', {
      iv,
      sealed,
      tag: cipher.getAuthTag(),
      tokenType: token.tokenType,
      expiresAt: token.expiresAt,
      refreshAtMs,
      cachedAt: now,
    });
  }

  /** Drops every cached token of a connector (shared connectors may be cached under several user keys). */
  forget(tenantId: string, connectorId: string): void {
    this.#epoch++;
    this.#entries.delete(`${tenantId}\n${connectorId}`);
  }
}
