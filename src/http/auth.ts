import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiKeys, VerifyResult } from '../apikeys/index.js';
import { LatchkeyError, systemClock, type Clock } from '../core/index.js';
import { SlidingWindow, type Actor, type Identity, type Permission } from '../identity/index.js';
import { CSRF_FAILED, CSRF_HEADER, csrfTokenMatches, needsCsrfToken } from './csrf.js';
import type { DisplayCache } from './display-cache.js';

/** Who is calling: a user, through one of their API keys or a console session. */
export interface Principal {
  tenantId: string;
  userId: string;
  /** Set when the request was authenticated by an API key. */
  apiKeyId?: string;
  /** The caller's current permissions (a key's: its owner's, narrowed by its roles). */
  permissions: ReadonlySet<Permission>;
  /** The same permissions, sorted. */
  permissionList: readonly Permission[];
  actor: Actor;
}

/** What a route needs: one permission, or only an authenticated caller. */
export type Access = Permission | 'authenticated';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Every route behind {@link authPlugin} declares it; a route without one is refused at start. */
    permission?: Access;
    /** The permission counts only in the system tenant (marked in the database): tenant administration. */
    systemTenant?: boolean;
  }
  interface FastifyRequest {
    /** Set by {@link authPlugin} before any handler runs; null outside its scope. */
    principal: Principal | null;
  }
}

export const SESSION_COOKIE = 'latchkey_session';

/** One sentence for every authentication failure: it never tells whether a key id exists. */
export const AUTHENTICATION_FAILED = 'Authentication failed: send a valid API key or log in.';

/** The `security` of every authenticated operation in the OpenAPI document. */
export const SECURITY: Array<Record<string, string[]>> = [{ apiKey: [] }, { sessionCookie: [] }];

export interface AuthOptions {
  identity: Identity;
  apiKeys: ApiKeys;
  display: DisplayCache;
  /** Failed authentications allowed per client address within the window (default 30 a minute). */
  failureLimit?: { limit: number; windowMs: number };
  clock?: Clock;
}

const AUTHORIZATION = /^(?:ApiKey|Bearer)[ \t]+(\S+)[ \t]*$/i;

/**
 * The caller, as {@link authPlugin} authenticated them.
 *
 * @example
 * app.get('/me', { config: { permission: 'authenticated' } }, async (request) => principalOf(request).userId);
 */
export function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  // Only reachable when a route is registered outside the authenticated scope by mistake.
  if (principal === null) throw new LatchkeyError('internal_error', 'The route has no authenticated caller.');
  return principal;
}

/**
 * True when the caller holds identity:admin (may act on other users' objects in its tenant).
 *
 * @example
 * if (view.ownerId !== principal.userId && !isAdmin(principal)) throw forbidden('identity:admin');
 */
export function isAdmin(principal: Principal): boolean {
  return principal.permissions.has('identity:admin');
}

/**
 * The 403 for a missing permission.
 *
 * @example
 * forbidden('apikeys:write').message; // 'This action needs the permission apikeys:write.'
 */
export function forbidden(permission: Permission, where = ''): LatchkeyError {
  return new LatchkeyError('forbidden', `This action needs the permission ${permission}${where}.`, { details: { permission } });
}

function tooMany(code: 'rate_limited' | 'usage_exceeded', message: string, retryAfterMs: number | undefined): LatchkeyError {
  const details = retryAfterMs === undefined ? undefined : { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
  return new LatchkeyError(code, message, details ? { details } : {});
}

// The sorted list for a permission set: the authorizer hands out the same set while nothing changed.
const listed = new WeakMap<ReadonlySet<Permission>, readonly Permission[]>();
// And the set for a sorted list: the verifier hands out the same list while nothing changed.
const sets = new WeakMap<readonly Permission[], ReadonlySet<Permission>>();

function sortedList(set: ReadonlySet<Permission>): readonly Permission[] {
  let list = listed.get(set);
  if (list === undefined) {
    list = Object.freeze([...set].sort());
    listed.set(set, list);
  }
  return list;
}

function setOf(list: readonly Permission[]): ReadonlySet<Permission> {
  let set = sets.get(list);
  if (set === undefined) {
    set = new Set(list);
    sets.set(list, set);
  }
  return set;
}

// One principal per key while its permissions stay the same objects: the verifier hands out the
// same sorted list for a key until its owner's or roles' permissions change, so a cached key's
// requests share one (frozen) principal instead of building one each.
const keyPrincipals = new WeakMap<readonly Permission[], Principal>();

function keyPrincipal(result: VerifyResult): Principal | undefined {
  const { keyId, tenantId, ownerId, permissions } = result;
  if (keyId === undefined || tenantId === undefined || ownerId === undefined || permissions === undefined) return undefined;
  const known = keyPrincipals.get(permissions);
  if (known !== undefined && known.apiKeyId === keyId && known.tenantId === tenantId && known.userId === ownerId) return known;
  const held = setOf(permissions);
  const principal: Principal = Object.freeze({
    tenantId,
    userId: ownerId,
    apiKeyId: keyId,
    permissions: held,
    permissionList: permissions,
    // The key's own permissions go with every change it makes: nobody grants more than they hold.
    actor: Object.freeze({ type: 'user' as const, tenantId, userId: ownerId, apiKeyId: keyId, permissions: held }),
  });
  keyPrincipals.set(permissions, principal);
  return principal;
}

/** The principal of a verified key; null when it is not valid. A key over its limits is a 429. */
function keyResult(result: VerifyResult): Principal | null {
  if (result.code === 'rate_limited') {
    throw tooMany('rate_limited', 'The API key has reached its rate limit; try again later.', result.retryAfterMs);
  }
  if (result.code === 'usage_exceeded') {
    throw tooMany('usage_exceeded', 'The API key has no credits left.', result.retryAfterMs);
  }
  return result.valid ? (keyPrincipal(result) ?? null) : null;
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, options) => {
  const { identity, apiKeys, display } = options;
  const clock = options.clock ?? systemClock;
  const limit = options.failureLimit ?? { limit: 30, windowMs: 60_000 };
  const failures = new SlidingWindow({ limit: limit.limit, windowMs: limit.windowMs });

  app.decorateRequest('principal', null);

  /**
   * Credentials first, the failure throttle only for failures: a valid key or session always
   * passes (keys cannot be guessed), so a neighbour behind the same proxy or NAT failing cannot
   * lock it out. An address over the limit gets 429 instead of 401 until its window frees up.
   */
  function failure(request: FastifyRequest): LatchkeyError {
    const address = request.ip;
    const now = clock.now().getTime();
    const waitMs = failures.retryAfterMs(address, now);
    if (waitMs > 0) return tooMany('rate_limited', 'Too many failed authentications from this address; try again later.', waitMs);
    failures.hit(address, now);
    return new LatchkeyError('unauthorized', AUTHENTICATION_FAILED);
  }

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const principal = await credentials(request);
    if (principal === null) throw failure(request);
    return principal;
  }

  /**
   * The caller of a request with an API key this process has cached, without waiting: a principal,
   * null when the key is not valid, undefined when the answer needs {@link credentials}.
   */
  function cachedKeyCredentials(request: FastifyRequest): Principal | null | undefined {
    const header = request.headers.authorization;
    if (header === undefined) return undefined;
    const key = AUTHORIZATION.exec(header)?.[1];
    if (key === undefined) return null;
    const result = apiKeys.verifier.verifyCached(key, { consume: true });
    return result === undefined ? undefined : keyResult(result);
  }

  /** The caller a request's key or session cookie names, or null when it names none. */
  async function credentials(request: FastifyRequest): Promise<Principal | null> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const key = AUTHORIZATION.exec(header)?.[1];
      if (key === undefined) return null;
      return keyResult(await apiKeys.verifier.verify(key, { consume: true }));
    }

    const cookie = request.headers.cookie;
    const token = cookie === undefined ? undefined : app.parseCookie(cookie)[SESSION_COOKIE];
    if (token === undefined || token === '') return null;
    // Checked before the session is even looked up: a forged request costs no database read and
    // counts as no failed authentication.
    if (needsCsrfToken(request.method) && !csrfTokenMatches(token, request.headers[CSRF_HEADER])) {
      throw new LatchkeyError('csrf_failed', CSRF_FAILED);
    }
    const session = await identity.sessions.authenticate(token);
    if (session === undefined) return null;
    const user = await identity.authorizer.userPermissions(session.tenantId, session.userId);
    if (!user.active) return null;
    const { tenantId, userId } = session;
    return {
      tenantId,
      userId,
      permissions: user.permissions,
      permissionList: sortedList(user.permissions),
      actor: { type: 'user', tenantId, userId, permissions: user.permissions },
    };
  }

  /** The check of one route's permission, made once when the route is registered. */
  function accessCheck(access: Access, systemTenant: boolean): (principal: Principal) => Promise<void> | void {
    if (access === 'authenticated') return () => {};
    if (!systemTenant) {
      return (principal) => {
        if (!principal.permissions.has(access)) throw forbidden(access);
      };
    }
    return async (principal) => {
      if (!principal.permissions.has(access)) throw forbidden(access);
      if (!(await display.isSystemTenant(principal.tenantId))) throw forbidden(access, ' in the system tenant');
    };
  }

  // Each route gets its own onRequest hook: authentication, then the route's permission, before
  // the body is even parsed. A route that declares no permission stops the server from starting.
  app.addHook('onRoute', (route) => {
    const access = route.config?.permission;
    if (access === undefined) {
      throw new Error(`Route ${String(route.method)} ${route.url} declares no permission (config.permission).`);
    }
    const check = accessCheck(access, route.config?.systemTenant === true);
    const admit = (request: FastifyRequest, principal: Principal, done: (err?: Error) => void): void => {
      request.principal = principal;
      let pending: Promise<void> | void;
      try {
        pending = check(principal);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (pending === undefined) done();
      else pending.then(() => done(), done);
    };
    // A callback hook: a cached key is answered without a promise; anything else is awaited.
    const guard = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
      let principal: Principal | null | undefined;
      try {
        principal = cachedKeyCredentials(request);
        if (principal === null) throw failure(request);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (principal !== undefined) admit(request, principal, done);
      else authenticate(request).then((found) => admit(request, found, done), done);
    };
    const existing = route.onRequest;
    route.onRequest = existing === undefined ? [guard] : [guard, ...(Array.isArray(existing) ? existing : [existing])];
  });
};

/**
 * Authenticates every request of the scope it is registered in, then checks the permission the
 * route declares (`config.permission`), before the body is parsed:
 * - `Authorization: ApiKey <key>` (or `Bearer <key>`) goes through the API key verifier, counting
 *   against the key's rate limit and credits; a limit hit is 429 with `Retry-After`, never 401.
 * - otherwise the `latchkey_session` cookie, checked against the user's current permissions. A
 *   state-changing request (any method but GET, HEAD, OPTIONS) made with it must also send the
 *   session's CSRF token (`X-Latchkey-CSRF`, the value of the `latchkey_csrf` cookie set at login),
 *   or it is 403 `csrf_failed` before the session is looked up.
 * Every failure is the same 401 sentence; failures are counted per client address (`request.ip`:
 * the socket's peer, or `X-Forwarded-For` from a trusted proxy), and an address over the limit
 * gets 429 for its failures until its window frees up. Valid credentials always pass.
 *
 * Register it (it is not encapsulated) in the scope of the authenticated routes only: public
 * routes live in a sibling scope, never behind a URL test.
 *
 * @example
 * await api.register(async (secured) => {
 *   await secured.register(authPlugin, { identity, apiKeys, display });
 *   secured.get('/me', { config: { permission: 'authenticated' } }, async (request) => principalOf(request));
 * });
 */
export const authPlugin = fp(auth, { name: 'latchkey-auth', dependencies: ['@fastify/cookie'] });
