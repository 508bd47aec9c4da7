import type { Selectable } from 'kysely';
import { DecryptionError, type Metrics } from '../core/index.js';
import { buildAad, CipherError, openParsed, parseSealed, seal, type DataKeys, type SealedParts } from '../crypto/index.js';
import type { ObjectsTable } from '../db/index.js';
import type { Attributes, ObjectType } from './registry.js';

export type ObjectRow = Selectable<ObjectsTable>;

export function pick(source: Attributes, names: readonly string[]): Attributes {
  const out: Attributes = {};
  for (const name of names) out[name] = source[name];
  return out;
}

export function omit(source: Attributes, names: readonly string[]): Attributes {
  const out: Attributes = { ...source };
  for (const name of names) delete out[name];
  return out;
}

/**
 * The AAD attribute names an object was sealed with, checked against what the reader knows. For a
 * type this process does not know (maintenance during a rolling upgrade) the stored list is used
 * as it is: the names are themselves bound into the AAD, so an edited list fails to decrypt.
 */
export function aadNames(type: ObjectType | undefined, row: ObjectRow): string[] {
  const stored = JSON.parse(row.aad_attributes) as string[];
  if (!type) return stored;
  const writer = type.version(row.model_version);
  const expected = writer ? writer.attributesToIncludeInAAD : type.latest.attributesToIncludeInAAD;
  // A version the reader knows must match exactly; a newer one may only have added names.
  const ok = writer
    ? stored.length === expected.length && expected.every((n) => stored.includes(n))
    : expected.every((n) => stored.includes(n));
  if (!ok) throw new DecryptionError(row.type, row.id, 'its AAD attribute list does not match its model version');
  return stored;
}

/** Seals and opens the encrypted attributes of one object row. */
export class ObjectSealer {
  readonly #dataKeys: DataKeys;
  readonly #metrics: Metrics | undefined;

  constructor(dataKeys: DataKeys, metrics?: Metrics) {
    this.#dataKeys = dataKeys;
    this.#metrics = metrics;
  }

  async seal(type: ObjectType, tenantId: string, id: string, attributes: Attributes) {
    const latest = type.latest;
    const plain = omit(attributes, latest.attributesToEncrypt);
    const aadAttributes = pick(plain, latest.attributesToIncludeInAAD);
    const secrets: Record<string, string> = {};
    let dataKeyId: string | null = null;
    for (const name of latest.attributesToEncrypt) {
      const value = attributes[name];
      if (value === undefined) continue;
      const dataKey = await this.#dataKeys.primaryFor(tenantId);
      dataKeyId = dataKey.id;
      const aad = buildAad({ objectType: type.name, objectId: id, tenantId, attribute: name, aadAttributes });
      secrets[name] = seal(dataKey.key, dataKey.id, Buffer.from(JSON.stringify(value), 'utf8'), aad);
      this.#count('encrypt', 'ok');
    }
    return {
      attributes: JSON.stringify(plain),
      secrets: JSON.stringify(secrets),
      aad_attributes: JSON.stringify(latest.attributesToIncludeInAAD),
      data_key_id: dataKeyId,
    };
  }

  /** Decrypts every sealed attribute of the row (whatever version wrote it), or those `only` accepts. */
  async open(type: ObjectType | undefined, row: ObjectRow, plain: Attributes, only?: (name: string) => boolean): Promise<Attributes> {
    const out: Attributes = {};
    for (const [name, plaintext] of await this.#openAll(type, row, plain, only)) out[name] = JSON.parse(plaintext.toString('utf8'));
    return out;
  }

  /**
   * Reseals the row's secrets under the tenant's primary data key with the same AAD, leaving
   * everything else as it is (for `rekey --data-keys`).
   */
  async reseal(type: ObjectType | undefined, row: ObjectRow): Promise<{ secrets: string; data_key_id: string | null }> {
    const plain = JSON.parse(row.attributes) as Attributes;
    const names = aadNames(type, row);
    const opened = await this.#openAll(type, row, plain);
    if (opened.length === 0) return { secrets: row.secrets, data_key_id: null };
    const dataKey = await this.#dataKeys.primaryFor(row.tenant_id);
    const aadAttributes = pick(plain, names);
    const secrets: Record<string, string> = {};
    for (const [name, plaintext] of opened) {
      const aad = buildAad({ objectType: row.type, objectId: row.id, tenantId: row.tenant_id, attribute: name, aadAttributes });
      secrets[name] = seal(dataKey.key, dataKey.id, plaintext, aad);
      this.#count('encrypt', 'ok');
    }
    return { secrets: JSON.stringify(secrets), data_key_id: dataKey.id };
  }

  async #openAll(type: ObjectType | undefined, row: ObjectRow, plain: Attributes, only?: (name: string) => boolean): Promise<[string, Buffer][]> {
    const secrets = JSON.parse(row.secrets) as Record<string, string>;
    const entries = Object.entries(secrets).filter(([name]) => !only || only(name));
    if (entries.length === 0) return [];
    const aadAttributes = pick(plain, aadNames(type, row));
    const out: [string, Buffer][] = [];
    for (const [name, sealed] of entries) {
      const fail = (reason: string, cause?: unknown, code?: 'key_not_found') => {
        this.#count('decrypt', 'error');
        return new DecryptionError(row.type, row.id, reason, { attribute: name, cause, ...(code ? { code } : {}) });
      };
      let parts: SealedParts;
      try {
        parts = parseSealed(sealed);
      } catch (err) {
        throw fail('the ciphertext is malformed', err);
      }
      const keyId = parts.keyId;
      // The ciphertext names its data key; decryption goes straight to it, never tries others.
      let dataKey = this.#dataKeys.peek(keyId);
      if (!dataKey) {
        try {
          dataKey = await this.#dataKeys.get(keyId, row.tenant_id);
        } catch (err) {
          if (err instanceof DecryptionError && err.code === 'key_not_found') throw fail('its key is not available', err, 'key_not_found');
          throw fail('its data key could not be unwrapped', err);
        }
      }
      if (dataKey.tenantId !== row.tenant_id) throw fail('its data key belongs to another tenant');
      const aad = buildAad({ objectType: row.type, objectId: row.id, tenantId: row.tenant_id, attribute: name, aadAttributes });
      try {
        out.push([name, openParsed(dataKey.key, parts, aad)]);
      } catch (err) {
        const malformed = err instanceof CipherError && err.reason !== 'authentication_failed';
        throw fail(malformed ? 'the ciphertext is malformed' : 'the ciphertext, its bound attributes or its key do not match', err);
      }
      this.#count('decrypt', 'ok');
    }
    return out;
  }

  #count(op: 'encrypt' | 'decrypt', outcome: 'ok' | 'error'): void {
    this.#metrics?.cryptoOperations.inc({ op, outcome });
  }
}
