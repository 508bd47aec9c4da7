import { z } from 'zod';
import { LatchkeyError } from '../core/index.js';
import { defineObjectType, type EncryptedObjectStore, type PlainAttributesOf, type StoredObject } from '../objects/index.js';
import { connectionError } from './tokens-errors.js';

export const CONNECTION_STATUSES = ['active', 'degraded', 'needs_reauthorization'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 time');

const connectionSchema = z.object({
  connectorId: z.string().min(1),
  userId: z.string().min(1).nullable(),
  tokenType: z.string().min(1),
  scopes: z.array(z.string()),
  expiresAt: isoTime.nullable(),
  refreshTokenExpiresAt: isoTime.nullable(),
  /** Raw provider fields (`instance_url`...); never a token. */
  extra: z.record(z.string(), z.unknown()),
  status: z.enum(CONNECTION_STATUSES),
  lastRefreshAt: isoTime.nullable(),
  /** Code of the last refresh failure (`invalid_grant`, `timeout`, `server_error`...). */
  lastRefreshError: z.string().nullable(),
  lastFailureAt: isoTime.nullable(),
  /** No refresh is attempted before this time (degraded connections). */
  backoffUntil: isoTime.nullable(),
  /** Refresh failures in a row; sets the backoff. */
  failureCount: z.number().int().nonnegative(),
  /**
   * Empty for a client credentials connection that has not got its first token yet, and for the
   * credential connection of a per-user api_key, basic or bearer connector (version 4).
   */
  accessToken: z.string(),
  refreshToken: z.string().min(1).optional(),
});

/**
 * Version 2 adds `issuedAt`: when the provider issued the access token, so that the refresh margin
 * can follow the token's lifetime. Connections stored before it have null and keep the plain skew.
 */
const connectionSchemaV2 = connectionSchema.extend({ issuedAt: isoTime.nullable() });

/**
 * Version 3 adds `endUserId`: the connection of an application's end user (an id the application
 * supplies) rather than of a Latchkey user. Bound into the AAD with `userId`, so a token moved to
 * another end user does not decrypt. Connections stored before it belong to no end user.
 */
const connectionSchemaV3 = connectionSchemaV2.extend({ endUserId: z.string().min(1).nullable() });

/**
 * Version 4 adds `config`: the values an end user gave for the connector's end-user fields (an
 * account subdomain), which decide where this connection's tokens go; bound into the AAD, so a row
 * edited to send them elsewhere does not decrypt. And `credential`: the user's own secret of a
 * per-user `api_key`, `basic` or `bearer` connector (such a connection has no access token), sealed.
 */
const connectionSchemaV4 = connectionSchemaV3.extend({
  config: z.record(z.string(), z.string()),
  credential: z
    .object({ key: z.string().optional(), username: z.string().optional(), password: z.string().optional(), token: z.string().optional() })
    .optional(),
});

export type ConnectionAttributes = z.infer<typeof connectionSchemaV4>;

/**
 * A connection: the tokens of one connector (shared) or of one user of a connector (per user).
 * Tokens are sealed; connector and user are bound into their AAD, so a token moved to another
 * connection or user does not decrypt.
 */
export const CONNECTION_TYPE = defineObjectType({
  name: 'connection',
  versions: [
    {
      version: 1,
      schema: connectionSchema,
      attributesToEncrypt: ['accessToken', 'refreshToken'],
      attributesToIncludeInAAD: ['connectorId', 'userId'],
    },
    {
      version: 2,
      schema: connectionSchemaV2,
      attributesToEncrypt: ['accessToken', 'refreshToken'],
      attributesToIncludeInAAD: ['connectorId', 'userId'],
      up: (previous) => ({ ...previous, issuedAt: null }),
    },
    {
      version: 3,
      schema: connectionSchemaV3,
      attributesToEncrypt: ['accessToken', 'refreshToken'],
      attributesToIncludeInAAD: ['connectorId', 'userId', 'endUserId'],
      up: (previous) => ({ ...previous, endUserId: null }),
    },
    {
      version: 4,
      schema: connectionSchemaV4,
      attributesToEncrypt: ['accessToken', 'refreshToken', 'credential'],
      attributesToIncludeInAAD: ['connectorId', 'userId', 'endUserId', 'config'],
      up: (previous) => ({ ...previous, config: {} }),
    },
  ],
});

/** An application's end user: an id the application chose, scoped to the tenant. */
export interface EndUserRef {
  endUserId: string;
}

/**
 * Whose connection: a Latchkey user's id, an application's end user, or null for a connector's
 * one shared connection.
 */
export type ConnectionOwner = string | EndUserRef | null;

export function isEndUser(owner: ConnectionOwner | undefined): owner is EndUserRef {
  return owner !== null && typeof owner === 'object';
}

const END_USER_PREFIX = 'end-user:';

const CONNECTOR_ID = /^[^\s:]{1,200}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Whether `value` can be an end user's id: 1 to 255 characters without control characters. */
export function isEndUserId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 255 && !CONTROL.test(value);
}

/** Refuses ids that cannot be part of a connection id; they come from requests, so `invalid_request`. */
export function assertConnectionKey(connectorId: unknown, owner?: unknown): void {
  if (typeof connectorId !== 'string' || !CONNECTOR_ID.test(connectorId)) {
    throw new LatchkeyError('invalid_request', 'The connector id must be 1 to 200 characters without spaces or colons.');
  }
  if (owner === undefined || owner === null) return;
  if (typeof owner === 'object') {
    if (!isEndUserId((owner as Partial<EndUserRef>).endUserId)) {
      throw new LatchkeyError('invalid_request', 'The end user id must be 1 to 255 characters without control characters.');
    }
    return;
  }
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 255 || CONTROL.test(owner)) {
    throw new LatchkeyError('invalid_request', 'The user id must be 1 to 255 characters without control characters.');
  }
  // An end user's connection id is `per-user:<connector>:end-user:<id>`: no user id may look like one.
  if (owner.startsWith(END_USER_PREFIX)) throw new LatchkeyError('invalid_request', `A user id cannot start with "${END_USER_PREFIX}".`);
}

/**
 * The id of a connection: `shared:<connectorId>`, `per-user:<connectorId>:<userId>` for a Latchkey
 * user, `per-user:<connectorId>:end-user:<endUserId>` for an application's end user. The prefix says
 * which kind a connection is, so updates and deletes never guess (connector ids have no colon and
 * user ids never start with `end-user:`).
 *
 * @example
 * connectionId('conn_1');                         // 'shared:conn_1'
 * connectionId('conn_1', 'usr_7');                // 'per-user:conn_1:usr_7'
 * connectionId('conn_1', { endUserId: 'u-42' });  // 'per-user:conn_1:end-user:u-42'
 */
export function connectionId(connectorId: string, owner?: ConnectionOwner): string {
  assertConnectionKey(connectorId, owner);
  if (owner === undefined || owner === null) return `shared:${connectorId}`;
  return isEndUser(owner) ? `per-user:${connectorId}:${END_USER_PREFIX}${owner.endUserId}` : `per-user:${connectorId}:${owner}`;
}

/** Tokens as a token endpoint granted them. */
export interface TokenSet {
  accessToken: string;
  /** Absent: the provider issued none (or, on a refresh, kept the old one). */
  refreshToken?: string;
  tokenType: string;
  scopes?: string[];
  /** UTC ISO-8601; null or absent when the provider sent no `expires_in` (valid until a 401). */
  expiresAt?: string | null;
  /** UTC ISO-8601: when the provider issued the access token (with `expiresAt`, its lifetime). */
  issuedAt?: string | null;
  refreshTokenExpiresAt?: string | null;
  /** Other response fields (`instance_url`...). Fields that look like credentials are dropped. */
  extra?: Record<string, unknown>;
}

/** A connection as everyone but the token client sees it: never a token. */
export interface ConnectionView {
  id: string;
  connectorId: string;
  /** The Latchkey user of a per-user connection; null for a shared one or an end user's. */
  userId: string | null;
  /** The application's end user of a per-user connection; null otherwise. */
  endUserId: string | null;
  tokenType: string;
  scopes: string[];
  expiresAt: string | null;
  refreshTokenExpiresAt: string | null;
  status: ConnectionStatus;
  lastRefreshAt: string | null;
  lastRefreshError: string | null;
  lastFailureAt: string | null;
  backoffUntil: string | null;
  extra: Record<string, unknown>;
  /** What the end user gave for the connector's end-user fields (`{subdomain: 'acme'}`); never a secret. */
  config: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface ConnectionPage {
  items: ConnectionView[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** Shared and per-user connections of a tenant, told apart by their id prefix. */
export interface ConnectionStore {
  /**
   * Stores the tokens of a (re)connection, replacing any earlier ones (a reconnect clears a
   * `needs_reauthorization` or `degraded` status). `userId` null: the connector's shared connection.
   */
  save(tenantId: string, connectorId: string, owner: ConnectionOwner, tokens: TokenSet, options?: SaveConnectionOptions): Promise<ConnectionView>;
  /** Throws `not_connected` when there is none. */
  get(tenantId: string, id: string): Promise<ConnectionView>;
  find(tenantId: string, connectorId: string, owner?: ConnectionOwner): Promise<ConnectionView | undefined>;
  /** Connections of the tenant by id, optionally of one connector and of one end user. */
  list(tenantId: string, options?: ConnectionListOptions): Promise<ConnectionPage>;
  /** Deletes without revoking (the token client's `disconnect` revokes). False when there was none. */
  delete(tenantId: string, id: string): Promise<boolean>;
}

export interface SaveConnectionOptions {
  /** The end user's values of the connector's end-user fields, which the connection's tokens were granted for. */
  config?: Readonly<Record<string, string>>;
}

export interface ConnectionListOptions {
  connectorId?: string;
  endUserId?: string;
  limit?: number;
  after?: string;
}

export interface ConnectionStoreOptions {
  /** Its registry must know {@link CONNECTION_TYPE}. */
  store: EncryptedObjectStore;
}

const CREDENTIAL_FIELD = /token|secret|password|assertion|code|key|signature/i;
const MAX_EXTRA_BYTES = 16 * 1024;

/** Provider fields worth keeping, minus anything that may be a credential (at any depth). */
export function sanitizeExtra(value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) return depth > 4 ? [] : value.map((v) => sanitizeExtra(v, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  if (depth > 4) return out;
  for (const [name, v] of Object.entries(value)) {
    if (CREDENTIAL_FIELD.test(name) || v === undefined) continue;
    out[name] = sanitizeExtra(v, depth + 1);
  }
  return out;
}

/** `extra` as stored: credential-like fields dropped, at most 16 KiB of JSON (else nothing). */
export function cleanExtra(extra: Record<string, unknown> | undefined): Record<string, unknown> {
  if (extra === undefined) return {};
  const clean = sanitizeExtra(extra) as Record<string, unknown>;
  // A provider answering megabytes of metadata does not get to grow every read.
  return Buffer.byteLength(JSON.stringify(clean)) > MAX_EXTRA_BYTES ? {} : clean;
}

/** `Bearer` and `DPoP` as RFC 6750 and RFC 9449 spell them (oauth4webapi lower-cases token types). */
export function normaliseTokenType(tokenType: string): string {
  const lower = tokenType.toLowerCase();
  if (lower === 'bearer') return 'Bearer';
  if (lower === 'dpop') return 'DPoP';
  return tokenType;
}

function assertTokenSet(tokens: TokenSet): void {
  if (tokens === null || typeof tokens !== 'object') throw new TypeError('"tokens" must be a TokenSet.');
  if (typeof tokens.accessToken !== 'string' || tokens.accessToken.length === 0) throw new TypeError('"tokens.accessToken" must be a non-empty string.');
  if (tokens.refreshToken !== undefined && (typeof tokens.refreshToken !== 'string' || tokens.refreshToken.length === 0)) {
    throw new TypeError('"tokens.refreshToken" must be a non-empty string when present.');
  }
  if (typeof tokens.tokenType !== 'string' || tokens.tokenType.length === 0) throw new TypeError('"tokens.tokenType" must be a non-empty string.');
}

/** The attributes of a fresh connection holding these tokens (status active, no failure). */
export function connectedAttributes(connectorId: string, owner: ConnectionOwner, tokens: TokenSet, config: Readonly<Record<string, string>> = {}): ConnectionAttributes {
  assertTokenSet(tokens);
  return {
    connectorId,
    userId: typeof owner === 'string' ? owner : null,
    endUserId: isEndUser(owner) ? owner.endUserId : null,
    tokenType: normaliseTokenType(tokens.tokenType),
    scopes: [...(tokens.scopes ?? [])],
    expiresAt: tokens.expiresAt ?? null,
    issuedAt: tokens.issuedAt ?? null,
    refreshTokenExpiresAt: tokens.refreshToken !== undefined ? (tokens.refreshTokenExpiresAt ?? null) : null,
    extra: cleanExtra(tokens.extra),
    status: 'active',
    lastRefreshAt: null,
    lastRefreshError: null,
    lastFailureAt: null,
    backoffUntil: null,
    failureCount: 0,
    config: { ...config },
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
  };
}

/**
 * The attributes of a connection that holds a user's own credential for a per-user `api_key`,
 * `basic` or `bearer` connector: no access token, the auth type as its token type.
 */
export function credentialAttributes(
  connectorId: string,
  owner: ConnectionOwner,
  authType: 'api_key' | 'basic' | 'bearer',
  credential: NonNullable<ConnectionAttributes['credential']>,
  config: Readonly<Record<string, string>> = {},
): ConnectionAttributes {
  if (owner === null) throw new TypeError('A credential connection belongs to a user or an end user.');
  return {
    connectorId,
    userId: typeof owner === 'string' ? owner : null,
    endUserId: isEndUser(owner) ? owner.endUserId : null,
    tokenType: authType,
    scopes: [],
    expiresAt: null,
    issuedAt: null,
    refreshTokenExpiresAt: null,
    extra: {},
    status: 'active',
    lastRefreshAt: null,
    lastRefreshError: null,
    lastFailureAt: null,
    backoffUntil: null,
    failureCount: 0,
    config: { ...config },
    accessToken: '',
    credential: { ...credential },
  };
}

/** Creates the connection, or replaces every attribute of the one there (a reconnect). */
export async function upsertConnection(store: EncryptedObjectStore, tenantId: string, id: string, attributes: ConnectionAttributes): Promise<ConnectionView> {
  try {
    return toConnectionView(await store.create(CONNECTION_TYPE, tenantId, attributes, { id }));
  } catch (err) {
    if (!(err instanceof LatchkeyError && err.code === 'conflict')) throw err;
  }
  // A reconnect: every attribute is replaced (an absent refresh token included).
  return toConnectionView(await store.update(CONNECTION_TYPE, tenantId, id, attributes));
}

export function toConnectionView(object: StoredObject<PlainAttributesOf<typeof CONNECTION_TYPE>>): ConnectionView {
  const a = object.attributes;
  return {
    id: object.id,
    connectorId: a.connectorId,
    userId: a.userId,
    endUserId: a.endUserId,
    tokenType: a.tokenType,
    scopes: [...a.scopes],
    expiresAt: a.expiresAt,
    refreshTokenExpiresAt: a.refreshTokenExpiresAt,
    status: a.status,
    lastRefreshAt: a.lastRefreshAt,
    lastRefreshError: a.lastRefreshError,
    lastFailureAt: a.lastFailureAt,
    backoffUntil: a.backoffUntil,
    extra: { ...a.extra },
    config: { ...a.config },
    createdAt: object.createdAt,
    updatedAt: object.updatedAt,
  };
}

/** A connection with its tokens: only the token client reads these. */
export interface ConnectionRecord {
  id: string;
  revision: number;
  attributes: ConnectionAttributes;
}

function isNotFound(err: unknown): boolean {
  return err instanceof LatchkeyError && err.code === 'not_found';
}

/** The connection decrypted, or undefined when there is none. */
export async function readConnection(store: EncryptedObjectStore, tenantId: string, id: string): Promise<ConnectionRecord | undefined> {
  try {
    const object = await store.getDecrypted(CONNECTION_TYPE, tenantId, id);
    return { id: object.id, revision: object.revision, attributes: object.attributes };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function notConnected(id: string) {
  return connectionError('not_connected', `There is no connection ${id}; connect the account first.`);
}

/**
 * @example
 * const connections = createConnectionStore({ store });
 * await connections.save(tenantId, connectorId, null, { accessToken, refreshToken, tokenType: 'bearer', expiresAt });
 * await connections.get(tenantId, connectionId(connectorId)); // status, scopes, expiry: never a token
 */
export function createConnectionStore(options: ConnectionStoreOptions): ConnectionStore {
  const { store } = options;
  const type = CONNECTION_TYPE;

  async function get(tenantId: string, id: string): Promise<ConnectionView> {
    try {
      return toConnectionView(await store.get(type, tenantId, id));
    } catch (err) {
      if (isNotFound(err)) throw notConnected(id);
      throw err;
    }
  }

  return {
    async save(tenantId, connectorId, owner, tokens, saveOptions = {}) {
      const id = connectionId(connectorId, owner);
      return upsertConnection(store, tenantId, id, connectedAttributes(connectorId, owner, tokens, saveOptions.config));
    },
    get,
    async find(tenantId, connectorId, owner) {
      const id = connectionId(connectorId, owner);
      try {
        return await get(tenantId, id);
      } catch (err) {
        if (err instanceof LatchkeyError && (err.code as string) === 'not_connected') return undefined;
        throw err;
      }
    },
    async list(tenantId, listOptions = {}) {
      const limit = Math.min(Math.max(listOptions.limit ?? 100, 1), 1000);
      const { connectorId: wanted, endUserId } = listOptions;
      if (wanted !== undefined) assertConnectionKey(wanted);
      if (endUserId !== undefined) assertConnectionKey(wanted ?? 'any', { endUserId });
      const matches = (view: ConnectionView) =>
        (wanted === undefined || view.connectorId === wanted) && (endUserId === undefined || view.endUserId === endUserId);
      const items: ConnectionView[] = [];
      let after = listOptions.after;
      for (;;) {
        const page = await store.list(type, tenantId, { limit, after });
        for (const object of page.items) {
          const view = toConnectionView(object);
          if (!matches(view)) continue;
          items.push(view);
          if (items.length === limit) return { items, next: view.id };
        }
        if (page.next === undefined) return { items };
        after = page.next;
      }
    },
    async delete(tenantId, id) {
      return store.delete(type, tenantId, id);
    },
  };
}
