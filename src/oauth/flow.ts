import { createHash, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as oauth from 'oauth4webapi';
import { withoutIdToken } from './id-token.js';
import { resolveForEndUser, type ConnectorService, type ResolvedConnector } from '../connectors/index.js';
import { LatchkeyError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { Database } from '../db/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { createOutbound, type Outbound } from '../outbound/index.js';
import { providerErrorFailure, remoteFailure, type CallbackFailureCode, type Failure } from './flow-failures.js';
import { checkReturnTo } from './flow-return-to.js';
import { createServerResolver, type ServerMetadata } from './flow-server.js';
import { clientAuthentication } from './resolved-client.js';
import type { ConnectionOwner, TokenSet } from './connections.js';
import { toTokenSet } from './flow-tokens.js';
import { createOAuthStateStore, type OAuthState } from './state.js';

export const CALLBACK_PATH = '/api/v1/oauth/callback';

export interface OAuthFlowOptions {
  store: EncryptedObjectStore;
  /** For the one-statement clean-up of expired states. */
  db: Kysely<Database>;
  connectors: ConnectorService;
  /** `LATCHKEY_PUBLIC_URL`: the redirect URI is `${publicUrl}/api/v1/oauth/callback` unless a connector overrides it. */
  publicUrl: string;
  /** How long a user has to finish at the provider (default 10 minutes). */
  stateTtlMs?: number;
  /** Origins `returnTo` may point at for every connector (each connector may add its own). */
  allowedReturnOrigins?: readonly string[];
  /**
   * Stores the tokens (the connection store's save); the owner is null for shared connectors;
   * `config` holds the end user's values of the connector's end-user fields (empty without).
   */
  onTokens(tenantId: string, connectorId: string, owner: ConnectionOwner, tokens: TokenSet, config: Record<string, string>): Promise<void>;
  /** Every request to a provider (discovery, token exchange) goes through it (default: `createOutbound()`). */
  outbound?: Outbound;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Who starts the connection: a Latchkey user, or an application's end user on the hosted connect
 * page (through a connect session). Per-user connectors store the tokens for them.
 */
export type AuthorizeSubject =
  | { tenantId: string; userId: string }
  | { tenantId: string; endUserId: string; connectSessionId: string };

export interface AuthorizeOptions {
  returnTo?: string;
  /**
   * Bind the flow to the browser that starts it: the result carries `browserCookie`, to set as a
   * cookie; the callback is refused unless it brings the same value. Always on for end users.
   */
  bindBrowser?: boolean;
  /**
   * The values of the connector's end-user fields (`{subdomain: 'acme'}`), checked against the
   * provider; they decide the authorization and token endpoints of this connection.
   */
  endUserConfig?: unknown;
}

export interface AuthorizeResult {
  authorizationUrl: string;
  /** UTC ISO-8601: the state is refused after this. */
  expiresAt: string;
  /** The cookie value the callback must bring, when the flow is bound to the browser. */
  browserCookie?: string;
}

export type CallbackResult =
  | {
      ok: true;
      tenantId: string;
      connectorId: string;
      userId: string | null;
      endUserId: string | null;
      connectSessionId: string | null;
      returnTo: string | null;
    }
  | {
      ok: false;
      code: CallbackFailureCode;
      message: string;
      providerError?: string;
      returnTo?: string;
      /** Set when the state was read: whose flow it was. */
      tenantId?: string;
      connectorId?: string;
      endUserId?: string | null;
      connectSessionId?: string | null;
    };

export interface CallbackOptions {
  /** The value of the browser-binding cookie the callback request carried. */
  browserCookie?: string;
}

export interface OAuthFlow {
  /** Starts a connection: stores a state and returns where to send the user's browser. */
  authorize(subject: AuthorizeSubject, connectorId: string, options?: AuthorizeOptions): Promise<AuthorizeResult>;
  /** Finishes one: consumes the state, exchanges the code, hands the tokens to `onTokens`. */
  callback(params: URLSearchParams, options?: CallbackOptions): Promise<CallbackResult>;
  /** Deletes every expired state in one statement; returns how many. */
  cleanupExpired(): Promise<number>;
}

const DEFAULT_STATE_TTL_MS = 10 * 60 * 1000;
const INVALID_STATE: Failure = {
  code: 'invalid_state',
  message: 'This sign-in link is invalid, expired or already used; start connecting again.',
};
const OTHER_BROWSER: Failure = {
  code: 'browser_mismatch',
  message: 'This sign-in was finished in a different browser from the one that started it; start connecting again from the same browser.',
};

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) throw new TypeError(`"${name}" must be a non-empty string.`);
}

function normaliseOrigins(origins: readonly string[]): string[] {
  return origins.map((origin) => {
    const url = new URL(origin);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`"allowedReturnOrigins" holds ${origin}, which is not an http(s) origin.`);
    return url.origin;
  });
}

function scopeParam(resolved: ResolvedConnector): string | undefined {
  const config = resolved.provider.oauth;
  if (!config || config.scopes.length === 0) return undefined;
  return config.scopes.join(config.scopeSeparator);
}

/**
 * The OAuth 2.0 authorization code flow with PKCE (S256), done with oauth4webapi. Services only: the
 * HTTP routes call `authorize` and `callback` and turn the results into JSON, a redirect or a page.
 *
 * @example
 * const flow = createOAuthFlow({ store, db, connectors, publicUrl: settings.publicUrl,
 *   onTokens: (tenantId, connectorId, userId, tokens) => connections.save(tenantId, connectorId, userId, tokens) });
 * const { authorizationUrl } = await flow.authorize({ tenantId, userId }, connectorId, { returnTo: '/done' });
 * // ...the provider redirects the browser to /api/v1/oauth/callback?code=...&state=...
 * const result = await flow.callback(new URL(request.url, publicUrl).searchParams);
 */
export function createOAuthFlow(options: OAuthFlowOptions): OAuthFlow {
  const clock = options.clock ?? systemClock;
  const ttlMs = options.stateTtlMs ?? DEFAULT_STATE_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs < 1000) throw new TypeError('"stateTtlMs" must be a whole number of milliseconds, at least 1000.');
  const publicUrl = new URL(options.publicUrl).href.replace(/\/+$/, '');
  const globalOrigins = normaliseOrigins(options.allowedReturnOrigins ?? []);
  const outbound = options.outbound ?? createOutbound({ clock });
  const servers = createServerResolver(outbound);
  const states = createOAuthStateStore({ store: options.store });
  const { connectors, logger } = options;

  async function authorize(subject: AuthorizeSubject, connectorId: string, authorizeOptions: AuthorizeOptions = {}): Promise<AuthorizeResult> {
    assertString(subject?.tenantId, 'tenantId');
    const endUser = 'endUserId' in subject ? subject : undefined;
    if (endUser) {
      assertString(endUser.endUserId, 'endUserId');
      assertString(endUser.connectSessionId, 'connectSessionId');
    } else {
      assertString((subject as { userId?: unknown }).userId, 'userId');
    }
    assertString(connectorId, 'connectorId');
    const open = await connectors.getResolved(subject.tenantId, connectorId);
    const { connector } = open;
    if (open.endUserFields.length > 0 && authorizeOptions.endUserConfig === undefined) {
      throw new LatchkeyError('validation_failed', `The connector ${connectorId} needs ${open.endUserFields.join(', ')} from each user who connects it; send them as config.`, {
        details: { fields: open.endUserFields.map((name) => ({ path: `config.${name}`, message: 'is required' })) },
      });
    }
    const resolved = authorizeOptions.endUserConfig === undefined ? open : resolveForEndUser(open, authorizeOptions.endUserConfig);
    if (connector.authType !== 'oauth_authorization_code' || !resolved.provider.oauth) {
      throw new LatchkeyError('invalid_request', `The connector ${connectorId} does not use the authorization code flow (its auth type is ${connector.authType}).`);
    }
    if (endUser && connector.tokenMode !== 'per_user') {
      throw new LatchkeyError('invalid_request', `The connector ${connectorId} is shared: an end user cannot connect it.`);
    }
    const returnTo =
      authorizeOptions.returnTo === undefined
        ? null
        : checkReturnTo(authorizeOptions.returnTo, publicUrl, [...globalOrigins, ...connector.allowedReturnOrigins]);
    let server: ServerMetadata;
    try {
      server = await servers.metadata(resolved);
    } catch (err) {
      if (!remoteFailure(resolved.template.name, err)) throw err;
      throw new LatchkeyError('provider_unavailable', `The OpenID Connect metadata of ${resolved.template.name} could not be read.`, { cause: err });
    }
    // An endpoint no request will ever reach is the connector's configuration error, refused before the user leaves.
    outbound.assertAllowed(server.as.authorization_endpoint as string, 'authorization endpoint');
    outbound.assertAllowed(server.as.token_endpoint as string, 'token endpoint');
    const redirectUri = connector.redirectUri ?? `${publicUrl}${CALLBACK_PATH}`;
    const state = oauth.generateRandomState();
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const expiresAt = new Date(clock.now().getTime() + ttlMs).toISOString();
    const browserCookie = endUser || authorizeOptions.bindBrowser ? oauth.generateRandomState() : undefined;
    await states.save(subject.tenantId, state, {
      connectorId,
      userId: endUser ? null : (subject as { userId: string }).userId,
      endUserId: endUser?.endUserId ?? null,
      connectSessionId: endUser?.connectSessionId ?? null,
      browserBinding: browserCookie === undefined ? null : sha256(browserCookie),
      config: { ...resolved.endUserConfig },
      redirectUri,
      returnTo,
      expiresAt,
      codeVerifier,
    });

    const url = new URL(server.as.authorization_endpoint as string);
    const config = resolved.provider.oauth;
    for (const [name, value] of Object.entries(config.authorizationParams)) url.searchParams.set(name, value);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', resolved.clientId ?? '');
    url.searchParams.set('redirect_uri', redirectUri);
    const scope = scopeParam(resolved);
    if (scope !== undefined) url.searchParams.set('scope', scope);
    url.searchParams.set('state', state);
    if (config.pkce) {
      url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
    }
    return browserCookie === undefined ? { authorizationUrl: url.href, expiresAt } : { authorizationUrl: url.href, expiresAt, browserCookie };
  }

  /** Exchanges the code; a Failure for anything the provider or the network did wrong. */
  async function exchange(pending: OAuthState, resolved: ResolvedConnector, params: URLSearchParams): Promise<TokenSet | Failure> {
    const name = resolved.template.name;
    const config = resolved.provider.oauth;
    if (!config) return { code: 'connector_unavailable', message: 'The connector no longer uses OAuth; start connecting again.' };
    try {
      const { as, issuerKnown } = await servers.metadata(resolved);
      outbound.assertAllowed(as.token_endpoint as string, 'token endpoint');
      const client: oauth.Client = { client_id: resolved.clientId ?? '' };
      // Without issuer metadata there is no issuer to compare `iss` with (RFC 9207 needs one).
      const received = new URLSearchParams(params);
      if (!issuerKnown) received.delete('iss');
      const validated = oauth.validateAuthResponse(as, client, received, received.get('state') ?? oauth.expectNoState);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuthentication(config.clientAuthentication, resolved.clientSecret),
        validated,
        pending.redirectUri,
        config.pkce ? pending.codeVerifier : oauth.nopkce,
        { ...outbound.oauthOptions(as.token_endpoint as string), additionalParameters: config.tokenParams },
      );
      const body = issuerKnown ? response : await withoutIdToken(response);
      const result = await oauth.processAuthorizationCodeResponse(as, client, body);
      return toTokenSet(result, clock.now(), config.scopes);
    } catch (err) {
      if (err instanceof LatchkeyError && (err.code === 'insecure_endpoint' || err.code === 'egress_refused')) return { code: 'connector_unavailable', message: err.message };
      const failure = remoteFailure(name, err);
      if (!failure) throw err;
      logger?.warn(
        { connectorId: pending.connectorId, tenantId: pending.tenantId, code: failure.code, providerError: failure.providerError, reason: (err as Error).message },
        'An OAuth callback failed at the provider.',
      );
      return failure;
    }
  }

  async function callback(params: URLSearchParams, callbackOptions: CallbackOptions = {}): Promise<CallbackResult> {
    if (!(params instanceof URLSearchParams)) throw new TypeError('"params" must be a URLSearchParams.');
    // Consumed before anything else, whatever the outcome: a state is good for one attempt.
    const pending = await states.consume(params.get('state') ?? '');
    if (!pending) return { ok: false, ...INVALID_STATE };
    const withReturn = (failure: Failure): CallbackResult => ({
      ok: false,
      ...failure,
      ...(pending.returnTo ? { returnTo: pending.returnTo } : {}),
      tenantId: pending.tenantId,
      connectorId: pending.connectorId,
      endUserId: pending.endUserId,
      connectSessionId: pending.connectSessionId,
    });
    if (Date.parse(pending.expiresAt) <= clock.now().getTime()) return withReturn(INVALID_STATE);
    // A link started in one browser and finished in another (forwarded, or planted by an attacker
    // who started it) would attach the account of whoever finishes it to the starter's end user.
    if (pending.browserBinding !== null) {
      const brought = callbackOptions.browserCookie;
      const expected = Buffer.from(pending.browserBinding);
      const actual = Buffer.from(typeof brought === 'string' ? sha256(brought) : '');
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return withReturn(OTHER_BROWSER);
    }

    let resolved: ResolvedConnector;
    try {
      const open = await connectors.getResolved(pending.tenantId, pending.connectorId);
      // The endpoints the end user's config made at authorize (checked again: the connector may have changed).
      resolved = open.endUserFields.length > 0 || Object.keys(pending.config).length > 0 ? resolveForEndUser(open, pending.config) : open;
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) {
        const changed = err.code === 'validation_failed' ? 'changed' : 'was removed';
        return withReturn({ code: 'connector_unavailable', message: `The connector ${changed} while connecting; start again.` });
      }
      throw err;
    }
    const { connector } = resolved;
    if (connector.authType !== 'oauth_authorization_code') {
      return withReturn({ code: 'connector_unavailable', message: 'The connector no longer uses the authorization code flow.' });
    }
    const error = params.get('error');
    if (error !== null) return withReturn(providerErrorFailure(resolved.template.name, error, params.get('error_description') ?? undefined));

    const tokens = await exchange(pending, resolved, params);
    if (!('accessToken' in tokens)) return withReturn(tokens);
    const owner: ConnectionOwner =
      connector.tokenMode !== 'per_user' ? null : pending.endUserId !== null ? { endUserId: pending.endUserId } : pending.userId;
    if (connector.tokenMode === 'per_user' && owner === null) {
      return withReturn({ code: 'connector_unavailable', message: 'The connector changed while connecting; start again.' });
    }
    try {
      await options.onTokens(pending.tenantId, pending.connectorId, owner, tokens, { ...resolved.endUserConfig });
    } catch (err) {
      logger?.error({ err, connectorId: pending.connectorId, tenantId: pending.tenantId }, 'Storing the tokens of an OAuth callback failed.');
      return withReturn({ code: 'internal_error', message: 'The account was authorized but could not be saved; try connecting again.' });
    }
    return {
      ok: true,
      tenantId: pending.tenantId,
      connectorId: pending.connectorId,
      userId: pending.userId,
      endUserId: pending.endUserId,
      connectSessionId: pending.connectSessionId,
      returnTo: pending.returnTo,
    };
  }

  return {
    authorize,
    callback,
    async cleanupExpired() {
      // Every state lives exactly ttlMs from its creation, so "created ttlMs ago" is "expired".
      return states.deleteOlderThan(new Date(clock.now().getTime() - ttlMs));
    },
  };
}
