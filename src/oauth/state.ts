import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { defineObjectType, type EncryptedObjectStore } from '../objects/index.js';

/**
 * One pending authorization: created by authorize, consumed once by the callback. The PKCE verifier
 * is encrypted; the AAD binds it to the connector, the initiating user and the redirect URI (the
 * tenant and the object id, itself derived from the state value, are in every AAD already). These
 * three never change while the state lives, so the AAD is minimal and stable.
 */
const stateSchemaV1 = z.object({
  connectorId: z.string(),
  userId: z.string(),
  redirectUri: z.string(),
  returnTo: z.string().nullable(),
  expiresAt: z.string(),
  codeVerifier: z.string(),
});

/**
 * Version 2: a flow started on the hosted connect page belongs to an application's end user (no
 * Latchkey user), to the connect session that started it, and to the browser that started it (the
 * SHA-256 of a cookie set then). The three are new attributes, bound into the AAD.
 */
const stateSchemaV2 = stateSchemaV1.extend({
  userId: z.string().nullable(),
  endUserId: z.string().nullable(),
  connectSessionId: z.string().nullable(),
  browserBinding: z.string().nullable(),
});

/**
 * Version 3: the values the end user gave for the connector's end-user fields (an account
 * subdomain), which decide the token endpoint the code is exchanged at. A new attribute, in the AAD.
 */
const stateSchemaV3 = stateSchemaV2.extend({ config: z.record(z.string(), z.string()) });

export const OAUTH_STATE_TYPE = defineObjectType({
  name: 'oauth_state',
  versions: [
    {
      version: 1,
      schema: stateSchemaV1,
      attributesToEncrypt: ['codeVerifier'],
      attributesToIncludeInAAD: ['connectorId', 'userId', 'redirectUri'],
    },
    {
      version: 2,
      schema: stateSchemaV2,
      attributesToEncrypt: ['codeVerifier'],
      attributesToIncludeInAAD: ['connectorId', 'userId', 'redirectUri', 'endUserId', 'connectSessionId', 'browserBinding'],
      up: (previous) => ({ ...previous, endUserId: null, connectSessionId: null, browserBinding: null }),
    },
    {
      version: 3,
      schema: stateSchemaV3,
      attributesToEncrypt: ['codeVerifier'],
      attributesToIncludeInAAD: ['connectorId', 'userId', 'redirectUri', 'endUserId', 'connectSessionId', 'browserBinding', 'config'],
      up: (previous) => ({ ...previous, config: {} }),
    },
  ],
});

/** A state as the callback gets it back. */
export interface OAuthState {
  tenantId: string;
  connectorId: string;
  /** The Latchkey user who started it; null when an end user did, on the connect page. */
  userId: string | null;
  endUserId: string | null;
  connectSessionId: string | null;
  /** SHA-256 (base64url) of the cookie the starting browser got; the callback must bring it. */
  browserBinding: string | null;
  /** The end user's values of the connector's end-user fields; empty when it has none. */
  config: Record<string, string>;
  redirectUri: string;
  returnTo: string | null;
  expiresAt: string;
  readonly codeVerifier: string;
}

const UNUSABLE = new Set<string>(['decryption_failed', 'key_not_found', 'corrupt_object']);

/** 256 random bits in base64url, as oauth4webapi's generateRandomState makes them. */
const STATE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** Whether `value` has the shape of a state this module issues (checked before any lookup). */
export function isStateValue(value: unknown): value is string {
  return typeof value === 'string' && STATE_VALUE.test(value);
}

/**
 * The object id of a state: a hash of its value, so the database never holds the value itself and a
 * database reader cannot complete someone's authorization.
 *
 * @example
 * stateObjectId(generateRandomState()); // 'st_' + 43 base64url characters
 */
export function stateObjectId(state: string): string {
  return `st_${createHash('sha256').update(state, 'utf8').digest('base64url')}`;
}

export interface OAuthStateStore {
  save(tenantId: string, state: string, attributes: Omit<OAuthState, 'tenantId'>): Promise<void>;
  /**
   * Takes the state out of the store in one statement (`DELETE ... RETURNING`): of two callbacks
   * with the same state exactly one gets it. Undefined when there is none or it cannot be
   * decrypted (a row moved to another tenant, a tampered ciphertext or AAD attribute); it is
   * deleted either way.
   */
  consume(state: string): Promise<OAuthState | undefined>;
  /** Deletes, in one statement, every state created at or before `cutoff`. Returns how many. */
  deleteOlderThan(cutoff: Date): Promise<number>;
}

export interface OAuthStateStoreOptions {
  store: EncryptedObjectStore;
}

/**
 * @example
 * const states = createOAuthStateStore({ store });
 * await states.save(tenantId, state, { connectorId, userId, redirectUri, returnTo: null, expiresAt, codeVerifier });
 * const pending = await states.consume(state); // once; undefined the second time
 */
export function createOAuthStateStore(options: OAuthStateStoreOptions): OAuthStateStore {
  const { store } = options;
  return {
    async save(tenantId, state, attributes) {
      if (!isStateValue(state)) throw new TypeError('"state" must be 43 base64url characters.');
      await store.create(OAUTH_STATE_TYPE, tenantId, { ...attributes }, { id: stateObjectId(state) });
    },

    async consume(state) {
      if (!isStateValue(state)) return undefined;
      let object;
      try {
        object = await store.consume(OAUTH_STATE_TYPE, stateObjectId(state));
      } catch (err) {
        // The row is gone already (deleted before decryption): a bad state is never retried.
        if (err instanceof DecryptionError || (err instanceof LatchkeyError && UNUSABLE.has(err.code))) return undefined;
        throw err;
      }
      if (!object) return undefined;
      const a = object.attributes;
      return {
        tenantId: object.tenantId,
        connectorId: a.connectorId,
        userId: a.userId,
        endUserId: a.endUserId,
        connectSessionId: a.connectSessionId,
        browserBinding: a.browserBinding,
        config: { ...a.config },
        redirectUri: a.redirectUri,
        returnTo: a.returnTo,
        expiresAt: a.expiresAt,
        codeVerifier: a.codeVerifier,
      };
    },

    deleteOlderThan(cutoff) {
      return store.deleteCreatedBefore(OAUTH_STATE_TYPE, cutoff);
    },
  };
}
