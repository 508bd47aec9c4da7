import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { LatchkeyError } from '../core/index.js';
import { defineObjectType, type EncryptedObjectStore } from '../objects/index.js';

/**
 * The per-tenant pepper of API key hashes: 32 random bytes (base64), sealed in the encrypted object
 * store under the tenant's data key, so a copy of the database without the master key cannot
 * recompute a key's hash and thus cannot confirm a guessed key. Object id: `pepper_<tenantId>`.
 */
export const API_KEY_PEPPER_TYPE = defineObjectType({
  name: 'api_key_pepper',
  versions: [
    {
      version: 1,
      schema: z.object({ pepper: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes in base64') }),
      attributesToEncrypt: ['pepper'],
      attributesToIncludeInAAD: [],
    },
  ],
});

/** The keyed hash of a key's secret: HMAC-SHA-256 under the tenant's pepper. */
export function keyedHash(pepper: Buffer, secret: string): Buffer {
  return createHmac('sha256', pepper).update(secret).digest();
}

/** Compares two hashes in constant time (for equal lengths; hashes always have the same length). */
export function hashesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function pepperId(tenantId: string): string {
  return `pepper_${tenantId}`;
}

/**
 * Keyed hashing of API key secrets. The tenant's pepper is created on first use (race-free: every
 * process tries the same object id and the losers read the winner's) and cached in memory for the
 * life of the process, since a pepper never changes.
 *
 * @example
 * const hasher = new ApiKeyHasher({ store });
 * const stored = await hasher.hash(tenantId, secret);        // hex, for the api_keys row
 * hashesEqual(keyedHash(await hasher.pepper(tenantId), secret), Buffer.from(stored, 'hex')); // true
 */
export class ApiKeyHasher {
  readonly #store: EncryptedObjectStore;
  readonly #peppers = new Map<string, Buffer>();
  readonly #loading = new Map<string, Promise<Buffer>>();

  constructor(options: { store: EncryptedObjectStore }) {
    this.#store = options.store;
  }

  /** The tenant's pepper when it is already in memory (the hot path: no await). */
  peek(tenantId: string): Buffer | undefined {
    return this.#peppers.get(tenantId);
  }

  /** The tenant's pepper, read (or created) once per process. */
  pepper(tenantId: string): Promise<Buffer> {
    const known = this.#peppers.get(tenantId);
    if (known) return Promise.resolve(known);
    let loading = this.#loading.get(tenantId);
    if (!loading) {
      loading = this.#load(tenantId).then(
        (pepper) => {
          this.#peppers.set(tenantId, pepper);
          this.#loading.delete(tenantId);
          return pepper;
        },
        (err: unknown) => {
          this.#loading.delete(tenantId);
          throw err;
        },
      );
      this.#loading.set(tenantId, loading);
    }
    return loading;
  }

  /** The hex keyed hash of `secret` for the tenant, as stored in `api_keys.hash`. */
  async hash(tenantId: string, secret: string): Promise<string> {
    return keyedHash(await this.pepper(tenantId), secret).toString('hex');
  }

  async #load(tenantId: string): Promise<Buffer> {
    const id = pepperId(tenantId);
    let attributes: { pepper: string };
    try {
      attributes = (await this.#store.getDecrypted(API_KEY_PEPPER_TYPE, tenantId, id)).attributes;
    } catch (err) {
      if (!(err instanceof LatchkeyError) || err.code !== 'not_found') throw err;
      try {
        const pepper = randomBytes(32).toString('base64');
        await this.#store.create(API_KEY_PEPPER_TYPE, tenantId, { pepper }, { id });
        attributes = { pepper };
      } catch (createErr) {
        // Another process created it first: use the winner's.
        if (!(createErr instanceof LatchkeyError) || createErr.code !== 'conflict') throw createErr;
        attributes = (await this.#store.getDecrypted(API_KEY_PEPPER_TYPE, tenantId, id)).attributes;
      }
    }
    const pepper = Buffer.from(attributes.pepper, 'base64');
    if (pepper.length !== 32) {
      throw new LatchkeyError('corrupt_object', `The API key pepper of tenant ${tenantId} is not 32 bytes.`);
    }
    return pepper;
  }
}
