import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ConnectorService, ConnectorView } from '../connectors/index.js';
import { LatchkeyError, systemClock, type Clock } from '../core/index.js';
import { parseInput } from '../core/validation.js';
import { actorLabel, type Actor, type AuditLog } from '../identity/index.js';
import { defineObjectType, type EncryptedObjectStore } from '../objects/index.js';
import { isEndUserId } from '../oauth/index.js';

/** Where the hosted connect page is served, under the public URL. */
export const CONNECT_PAGE_PATH = '/connect';

const DEFAULT_TTL_MS = 30 * 60 * 1000;
const MIN_TTL_MS = 60 * 1000;
const MAX_TTL_MS = 24 * 60 * 60 * 1000;
const TOKEN_PREFIX = 'lkcs_';
const SECRET = /^[A-Za-z0-9_-]{43}$/;

/**
 * A connect session: what one end user may do on the hosted connect page until it expires. Its
 * object id is the SHA-256 of the token's secret, so the database never holds a usable token. The
 * end user's profile (name, email, tags) is personal data: sealed.
 */
export const CONNECT_SESSION_TYPE = defineObjectType({
  name: 'connect_session',
  versions: [
    {
      version: 1,
      schema: z.object({
        endUserId: z.string(),
        /** Null: every per-user connector of the tenant. */
        allowedConnectors: z.array(z.string()).nullable(),
        returnTo: z.string().nullable(),
        allowedOrigins: z.array(z.string()),
        expiresAt: z.string(),
        createdBy: z.string(),
        profile: z.object({
          displayName: z.string().optional(),
          email: z.string().optional(),
          tags: z.record(z.string(), z.string()),
        }),
      }),
      attributesToEncrypt: ['profile'],
      attributesToIncludeInAAD: ['endUserId'],
    },
  ],
});

const origin = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value.replace(/\/$/, '');
    } catch {
      return false;
    }
  }, 'must be an origin such as https://app.example.com');

const createSchema = z.strictObject({
  endUser: z.strictObject({
    id: z.string().refine(isEndUserId, 'must be 1 to 255 characters without control characters'),
    displayName: z.string().min(1).max(200).optional(),
    email: z.email().max(254).optional(),
    tags: z
      .record(z.string().min(1).max(64), z.string().max(256))
      .refine((tags) => Object.keys(tags).length <= 20, 'must have at most 20 entries')
      .optional(),
  }),
  allowedConnectors: z.array(z.string().min(1).max(200)).min(1, 'must name at least one connector (leave it out to allow them all)').max(100, 'must name at most 100 connectors').optional(),
  returnTo: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  allowedOrigins: z.array(origin).max(20).optional(),
  /** How long the session lasts, in milliseconds (default 30 minutes, at most 24 hours). */
  ttlMs: z.number().int().min(MIN_TTL_MS).max(MAX_TTL_MS).optional(),
});

export type ConnectSessionInput = z.input<typeof createSchema>;

export interface CreatedConnectSession {
  /** Shown once: the page's credential. */
  token: string;
  /** The hosted connect page for this session. */
  url: string;
  expiresAt: string;
}

/** A session as the connect page uses it. Never holds the token. */
export interface ConnectSession {
  id: string;
  tenantId: string;
  endUserId: string;
  allowedConnectors: string[] | null;
  returnTo: string | null;
  allowedOrigins: string[];
  expiresAt: string;
  displayName: string | null;
}

export interface ConnectSessions {
  /** Creates a session for an end user (the route needs `connectors:use`). */
  create(actor: Actor, tenantId: string, input: unknown): Promise<CreatedConnectSession>;
  /** The live session a token opens; `invalid_connect_session` when unknown, tampered or expired. */
  open(token: unknown): Promise<ConnectSession>;
  /** A session by id (the OAuth callback knows the id, not the token); undefined when gone or expired. */
  find(tenantId: string, id: string): Promise<ConnectSession | undefined>;
  /** The connectors the session lets its end user connect: per-user ones, narrowed to `allowedConnectors`. */
  connectors(session: ConnectSession): Promise<ConnectorView[]>;
  /** The connector if the session allows it, else `forbidden`. */
  connector(session: ConnectSession, connectorId: unknown): Promise<ConnectorView>;
  /** Deletes sessions that expired before `cutoff`; returns how many. */
  deleteExpired(cutoff: Date): Promise<number>;
}

export interface ConnectSessionsOptions {
  store: EncryptedObjectStore;
  connectors: ConnectorService;
  /** `LATCHKEY_PUBLIC_URL`: the page URL is `${publicUrl}/connect?session=...`. */
  publicUrl: string;
  audit?: AuditLog;
  clock?: Clock;
}

function invalidSession(): LatchkeyError {
  return new LatchkeyError('invalid_connect_session', 'This connect link is invalid or has expired; ask the application for a new one.');
}

function sessionId(secret: string): string {
  return `cs_${createHash('sha256').update(secret, 'utf8').digest('base64url')}`;
}

/** `lkcs_<tenantId>_<43 base64url characters>`: the tenant to look in, and the secret. */
function parseToken(token: unknown): { tenantId: string; secret: string } | undefined {
  if (typeof token !== 'string' || token.length > 300 || !token.startsWith(TOKEN_PREFIX)) return undefined;
  const secret = token.slice(-43);
  const tenantId = token.slice(TOKEN_PREFIX.length, -44);
  if (!SECRET.test(secret) || token[token.length - 44] !== '_' || !/^[A-Za-z0-9_-]{1,200}$/.test(tenantId)) return undefined;
  return { tenantId, secret };
}

/**
 * Connect sessions: short-lived, single-purpose tokens that let an application's end user connect
 * their own accounts on the hosted connect page, and nothing else.
 *
 * @example
 * const { token, url } = await sessions.create(actor, tenantId, { endUser: { id: 'u-42' }, allowedConnectors: [id] });
 * // send the end user's browser to `url`; the page calls sessions.open(token)
 */
export function createConnectSessions(options: ConnectSessionsOptions): ConnectSessions {
  const { store, connectors } = options;
  const clock = options.clock ?? systemClock;
  const publicUrl = new URL(options.publicUrl).href.replace(/\/+$/, '');

  function view(id: string, tenantId: string, a: { endUserId: string; allowedConnectors: string[] | null; returnTo: string | null; allowedOrigins: string[]; expiresAt: string }, displayName: string | null): ConnectSession {
    return { id, tenantId, endUserId: a.endUserId, allowedConnectors: a.allowedConnectors, returnTo: a.returnTo, allowedOrigins: a.allowedOrigins, expiresAt: a.expiresAt, displayName };
  }

  async function find(tenantId: string, id: string): Promise<ConnectSession | undefined> {
    let object;
    try {
      object = await store.getDecrypted(CONNECT_SESSION_TYPE, tenantId, id);
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) return undefined;
      if (err instanceof LatchkeyError && (err.code === 'decryption_failed' || err.code === 'corrupt_object')) return undefined;
      throw err;
    }
    if (Date.parse(object.attributes.expiresAt) <= clock.now().getTime()) return undefined;
    return view(object.id, object.tenantId, object.attributes, object.attributes.profile.displayName ?? null);
  }

  async function perUserConnectors(tenantId: string): Promise<ConnectorView[]> {
    const all: ConnectorView[] = [];
    let after: string | undefined;
    do {
      const page = await connectors.list(tenantId, { limit: 100, ...(after ? { after } : {}) });
      all.push(...page.items.filter((c) => c.tokenMode === 'per_user'));
      after = page.next;
    } while (after !== undefined);
    return all;
  }

  return {
    async create(actor, tenantId, input) {
      const parsed = parseInput(createSchema, input, 'connect session');
      const allowedOrigins = [...new Set((parsed.allowedOrigins ?? []).map((o) => new URL(o).origin))];
      if (parsed.returnTo !== undefined && !allowedOrigins.includes(new URL(parsed.returnTo).origin)) {
        throw new LatchkeyError('invalid_request', 'The returnTo URL must be on one of allowedOrigins, so the page never redirects anywhere else.');
      }
      let allowed: string[] | null = null;
      if (parsed.allowedConnectors) {
        allowed = [...new Set(parsed.allowedConnectors)];
        for (const id of allowed) {
          const connector = await connectors.get(tenantId, id);
          if (connector.tokenMode !== 'per_user') {
            throw new LatchkeyError('invalid_request', `The connector ${id} is shared: it has one connection for the whole tenant, which end users cannot connect.`);
          }
        }
      }
      const secret = randomBytes(32).toString('base64url');
      const token = `${TOKEN_PREFIX}${tenantId}_${secret}`;
      const id = sessionId(secret);
      const expiresAt = new Date(clock.now().getTime() + (parsed.ttlMs ?? DEFAULT_TTL_MS)).toISOString();
      const { endUser } = parsed;
      const attributes = {
        endUserId: endUser.id,
        allowedConnectors: allowed,
        returnTo: parsed.returnTo ?? null,
        allowedOrigins,
        expiresAt,
        createdBy: actorLabel(actor),
        profile: {
          ...(endUser.displayName !== undefined ? { displayName: endUser.displayName } : {}),
          ...(endUser.email !== undefined ? { email: endUser.email } : {}),
          tags: endUser.tags ?? {},
        },
      };
      const audit = options.audit;
      if (audit) {
        // The session and its audit record commit together.
        await store.transaction(async (tx) => {
          await tx.store.create(CONNECT_SESSION_TYPE, tenantId, attributes, { id });
          await audit.record(tx.db, { tenantId, actor, action: 'connect_session.created', target: endUser.id, details: { allowedConnectors: allowed, expiresAt } });
        });
      } else {
        await store.create(CONNECT_SESSION_TYPE, tenantId, attributes, { id });
      }
      const url = new URL(`${publicUrl}${CONNECT_PAGE_PATH}`);
      url.searchParams.set('session', token);
      return { token, url: url.href, expiresAt };
    },

    async open(token) {
      const parsed = parseToken(token);
      if (!parsed) throw invalidSession();
      const id = sessionId(parsed.secret);
      const session = await find(parsed.tenantId, id);
      // The id is the hash of the secret: found means the secret matched. Compared once more in
      // constant time so that no lookup shortcut ever turns into an oracle.
      if (!session || !timingSafeEqual(Buffer.from(session.id), Buffer.from(id))) throw invalidSession();
      return session;
    },

    find,

    async connectors(session) {
      const perUser = await perUserConnectors(session.tenantId);
      if (session.allowedConnectors === null) return perUser;
      const allowed = new Set(session.allowedConnectors);
      return perUser.filter((c) => allowed.has(c.id));
    },

    async connector(session, connectorId) {
      if (typeof connectorId !== 'string' || (session.allowedConnectors !== null && !session.allowedConnectors.includes(connectorId))) {
        throw new LatchkeyError('forbidden', 'This connect link does not allow that connector.');
      }
      let connector: ConnectorView;
      try {
        connector = await connectors.get(session.tenantId, connectorId);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'not_found') throw new LatchkeyError('forbidden', 'This connect link does not allow that connector.');
        throw err;
      }
      if (connector.tokenMode !== 'per_user') throw new LatchkeyError('forbidden', 'This connect link does not allow that connector.');
      return connector;
    },

    deleteExpired(cutoff) {
      // Sessions live at most 24 hours: one created a day before the cutoff has expired.
      return store.deleteCreatedBefore(CONNECT_SESSION_TYPE, new Date(cutoff.getTime() - MAX_TTL_MS));
    },
  };
}
