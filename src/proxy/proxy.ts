import type { Readable } from 'node:stream';
import { credentialOf, isStaticCredentialAuthType, resolveForEndUser, type ConnectorCredential, type ConnectorService, type ResolvedConnector } from '../connectors/index.js';
import { LatchkeyError, type Logger } from '../core/index.js';
import type { Actor, AuditLog } from '../identity/index.js';
import { isEndUser, type AccessToken, type ConnectionOwner, type ConnectionStore, type TokenClient, type UserCredentials } from '../oauth/index.js';
import { onAbort, type CancelSignal, type Outbound } from '../outbound/index.js';

/** Headers that describe one hop, never forwarded (RFC 9110 7.6.1), plus the ones Latchkey owns. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);
/** The caller's own credentials and client details never reach the provider. */
const CALLER_ONLY = new Set(['authorization', 'cookie', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'accept-encoding', 'content-length']);
/**
 * What a provider's answer may not set on Latchkey's origin. Its body passes through byte for byte
 * (never decoded), so its content-length and content-encoding still describe it and go along.
 */
const RESPONSE_DROPPED = new Set(['set-cookie', 'set-cookie2', 'strict-transport-security', 'alt-svc', 'clear-site-data']);

/** Answers that have no body. */
const NO_BODY = new Set([204, 205, 304]);
/** Request bodies up to this size are buffered so a 401 or 429 can be retried; larger ones stream once. */
const REPLAYABLE_BYTES = 64 * 1024;
/** `Latchkey-Retries` beyond this is capped. */
const MAX_RETRIES = 3;
/** A `Retry-After` longer than this is not waited for: the answer is passed through. */
const MAX_RETRY_WAIT_MS = 10_000;

export interface ProxyRequest {
  /** Who calls: recorded in the audit log with the connection and the outcome. */
  actor: Actor;
  tenantId: string;
  connectorId: string;
  /** Whose connection for a per-user connector (null for a shared one). */
  owner: ConnectionOwner;
  method: string;
  /** The path below the provider's API base URL, starting with `/`, as the caller sent it (still percent-encoded). */
  path: string;
  /** The raw query string without `?`, or empty. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  /** The request body as it arrives, or undefined for none. */
  body: Readable | undefined;
  /** Retries of a 429/503 with `Retry-After` the caller asked for (`Latchkey-Retries`). */
  retries?: number;
  /** The caller went away: stops the call to the provider. */
  signal?: CancelSignal;
}

export interface ProxyResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** The provider's body, streamed; null for none. */
  body: Readable | null;
  /** What was called, for the audit record: never a query string or credential. */
  target: string;
  /** Whether a rejected OAuth token was refreshed for a retry. */
  refreshed: boolean;
}

export interface ProxyOptions {
  connectors: ConnectorService;
  tokens: TokenClient;
  /** The connections' own credentials of per-user api_key, basic and bearer connectors. */
  credentials: UserCredentials;
  /** The config stored with a connection, for connectors whose API base URL depends on each end user's. */
  connections: ConnectionStore;
  outbound: Outbound;
  /** Response bodies larger than this are cut off with an error (default 10 MiB... the outbound default). */
  maxResponseBytes?: number;
  maxRequestBytes?: number;
  /**
   * Records every token handed out and every proxied call (never a token, a query or a body),
   * committed before the answer is given (group commit: concurrent calls share one write).
   */
  audit?: AuditLog;
  logger?: Logger;
}

export interface Proxy {
  forward(request: ProxyRequest): Promise<ProxyResponse>;
  /** A valid access token of an OAuth connection, handed out to `actor` (audited as `connection.token_issued`). */
  token(actor: Actor, tenantId: string, connectorId: string, owner: ConnectionOwner): Promise<AccessToken>;
}

/** Whose connection, as the audit log shows it. */
function ownerDetails(owner: ConnectionOwner): Record<string, string> {
  if (owner === null) return {};
  return isEndUser(owner) ? { endUserId: owner.endUserId } : { userId: owner };
}

interface Injected {
  headers: Record<string, string>;
  query: Record<string, string>;
  /** The OAuth access token used, to report it as rejected on a 401. */
  accessToken?: string;
}

function sleep(ms: number, signal?: CancelSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const stopListening = signal === undefined ? undefined : onAbort(signal, () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
    const timer = setTimeout(() => {
      stopListening?.();
      resolve();
    }, ms);
  });
}

/** API base URLs as parsed, by their text: a call parses only its own path. Read, never changed. */
const roots = new Map<string, { url: URL; origin: string; pathname: string }>();
const MAX_ROOTS = 1000;

function rootOf(base: string): { url: URL; origin: string; pathname: string } {
  let root = roots.get(base);
  if (root === undefined) {
    const url = new URL(base.endsWith('/') ? base : `${base}/`);
    root = { url, origin: url.origin, pathname: url.pathname };
    if (roots.size >= MAX_ROOTS) roots.clear();
    roots.set(base, root);
  }
  return root;
}

/** The target URL: the base URL with the caller's path appended; a path may not climb out of the base. */
export function targetUrl(base: string, path: string, query: string): URL {
  const root = rootOf(base);
  if (!path.startsWith('/')) throw new LatchkeyError('invalid_request', 'The proxied path must start with "/".');
  // Percent-encoded dots and slashes could climb after decoding at the provider: refused as they are.
  if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(path) || /%2f|%5c|\\/i.test(path)) {
    throw new LatchkeyError('invalid_request', 'The proxied path may not contain "." or ".." segments or encoded slashes.');
  }
  const url = new URL(path.slice(1), root.url);
  if (url.origin !== root.origin || !url.pathname.startsWith(root.pathname)) {
    throw new LatchkeyError('invalid_request', 'The proxied path must stay below the provider\'s API base URL.');
  }
  if (query !== '') url.search = query;
  return url;
}

function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

async function readLimited(body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > max) throw new LatchkeyError('payload_too_large', `The request body is larger than ${max} bytes.`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The proxy: forwards a caller's request to a connector's API with the connector's credential
 * injected (OAuth bearer token of the shared or per-user connection, API key in a header or the
 * query, basic, bearer), through the outbound module (egress policy, timeouts, size limits, a
 * concurrency limit per connector). Streams both bodies. A 401 refreshes the OAuth token once,
 * and only when the stored token is still the one refused; 429/503 are retried only when asked.
 *
 * @example
 * const answer = await proxy.forward({ tenantId, connectorId, owner: { endUserId: 'u-42' }, method: 'GET', path: '/user', query: '', headers: {}, body: undefined });
 */
export function createProxy(options: ProxyOptions): Proxy {
  const { connectors, tokens, outbound } = options;
  const send = outbound.streamWith({
    ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
  });

  /**
   * The connector resolved for the connection the request uses (an end user's subdomain fills its
   * API base URL) and, for a per-user api_key, basic or bearer connector, that connection's credential.
   */
  async function forConnection(resolved: ResolvedConnector, owner: ConnectionOwner): Promise<{ resolved: ResolvedConnector; credential?: ConnectorCredential }> {
    const { connector } = resolved;
    if (connector.tokenMode === 'per_user' && isStaticCredentialAuthType(connector.authType)) return options.credentials.credentialFor(resolved, owner);
    if (resolved.endUserFields.length === 0 || owner === null) return { resolved };
    const connection = await options.connections.find(connector.tenantId, connector.id, owner);
    if (!connection) throw new LatchkeyError('not_connected', `The connector ${connector.id} has no connection for that user; connect the account first.`);
    return { resolved: resolveForEndUser(resolved, connection.config) };
  }

  async function inject(resolved: ResolvedConnector, owner: ConnectionOwner, rejected?: string, userCredential?: ConnectorCredential): Promise<Injected> {
    const { connector } = resolved;
    if (connector.authType === 'oauth_authorization_code' || connector.authType === 'oauth_client_credentials') {
      const token = rejected
        ? await tokens.refreshRejected(connector.tenantId, connector.id, owner, rejected)
        : await tokens.getAccessToken(connector.tenantId, connector.id, owner);
      return { headers: { authorization: `${token.tokenType} ${token.accessToken}` }, query: {}, accessToken: token.accessToken };
    }
    if (owner !== null && userCredential === undefined) {
      throw new LatchkeyError('invalid_request', `The connector ${connector.id} has one credential for the whole tenant; leave out the user and end user.`);
    }
    const credential = userCredential ?? credentialOf(resolved);
    switch (credential.authType) {
      case 'api_key':
        return credential.in === 'header'
          ? { headers: { [credential.name.toLowerCase()]: `${credential.prefix}${credential.key}` }, query: {} }
          : { headers: {}, query: { [credential.name]: `${credential.prefix}${credential.key}` } };
      case 'basic':
        return { headers: { authorization: `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}` }, query: {} };
      case 'bearer':
        return { headers: { authorization: `Bearer ${credential.token}` }, query: {} };
    }
  }

  async function record(actor: Actor, tenantId: string, action: string, connectorId: string, details: Record<string, unknown>): Promise<void> {
    await options.audit?.append({ tenantId, actor, action, target: connectorId, details });
  }

  return {
    async token(actor, tenantId, connectorId, owner) {
      const token = await tokens.getAccessToken(tenantId, connectorId, owner);
      await record(actor, tenantId, 'connection.token_issued', connectorId, { ...ownerDetails(owner), expiresAt: token.expiresAt });
      return token;
    },

    async forward(request) {
      let answered = false;
      try {
        return await forwardAndRecord(request, () => (answered = true));
      } catch (err) {
        // A call refused or failed before the provider's answer is recorded too, with its error
        // code (never its message, which may name a value); the caller's own hang-up is not a call.
        if (!answered && err instanceof LatchkeyError && !request.signal?.aborted) {
          const path = request.path.startsWith('/') ? request.path : `/${request.path}`;
          await record(request.actor, request.tenantId, 'connection.proxied', request.connectorId, {
            ...ownerDetails(request.owner),
            method: request.method.toUpperCase(),
            path: path.length > 500 ? `${path.slice(0, 500)}…` : path,
            error: err.code,
          }).catch(() => {});
        }
        throw err;
      }
    },
  };

  async function forwardAndRecord(request: ProxyRequest, onRecorded: () => void): Promise<ProxyResponse> {
    const { resolved, credential } = await forConnection(await connectors.getResolved(request.tenantId, request.connectorId), request.owner);
    const base = resolved.provider.apiBaseUrl;
    if (!base) {
      throw new LatchkeyError('invalid_request', `The connector ${request.connectorId} has no API base URL to proxy to; set config.apiBaseUrl.`);
    }
    const url = targetUrl(base, request.path, request.query);
    outbound.assertAllowed(url, 'API');
    const headers: Record<string, string> = {};
    for (const name in request.headers) {
      const value = request.headers[name];
      const lower = name.toLowerCase();
      if (value === undefined || HOP_BY_HOP.has(lower) || CALLER_ONLY.has(lower) || lower.startsWith('latchkey-')) continue;
      headers[lower] = Array.isArray(value) ? value.join(', ') : value;
    }
    // Uncompressed from the provider: Latchkey streams what it gets, byte for byte.
    headers['accept-encoding'] = 'identity';
    const method = request.method.toUpperCase();
    const lengthHeader = request.headers['content-length'];
    const length = typeof lengthHeader === 'string' ? Number(lengthHeader) : undefined;
    let body: Buffer | Readable | undefined = request.body;
    if (body && length !== undefined && length <= REPLAYABLE_BYTES) body = await readLimited(body, REPLAYABLE_BYTES);
    const replayable = body === undefined || Buffer.isBuffer(body);
    const retries = Math.min(Math.max(Math.trunc(request.retries ?? 0), 0), MAX_RETRIES);

    const { response, refreshed } = await outbound.limit(`${request.tenantId}\n${request.connectorId}`, async () => {
      let injected = await inject(resolved, request.owner, undefined, credential);
      let refreshed = false;
      for (let attempt = 0; ; attempt++) {
        // A copy only when the credential goes in the query: `url` itself is what the audit row names.
        const queryCredential = Object.entries(injected.query);
        const target = queryCredential.length === 0 ? url : new URL(url);
        for (const [name, value] of queryCredential) target.searchParams.set(name, value);
        const response = await send({
          url: target,
          method,
          headers: { ...headers, ...injected.headers },
          ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        });
        if (response.status === 401 && injected.accessToken !== undefined && !refreshed && replayable) {
          await response.discard();
          // Refreshes only if the stored token is still the refused one (else uses the newer one), exactly once.
          injected = await inject(resolved, request.owner, injected.accessToken);
          refreshed = true;
          continue;
        }
        if ((response.status === 429 || response.status === 503) && attempt < retries && replayable) {
          const retryAfter = response.headers['retry-after'];
          const wait = retryAfterMs(typeof retryAfter === 'string' ? retryAfter : null, Date.now());
          if (wait !== undefined && wait <= MAX_RETRY_WAIT_MS) {
            await response.discard();
            await sleep(wait, request.signal);
            continue;
          }
        }
        return { response, refreshed };
      }
    });
    // The path is recorded, never the query (it may hold a key) or a body; outside the
    // connector's concurrency limit, which is for the provider.
    try {
      await record(request.actor, request.tenantId, 'connection.proxied', request.connectorId, {
        ...ownerDetails(request.owner),
        method,
        path: url.pathname,
        status: response.status,
        ...(refreshed ? { refreshed: true } : {}),
      });
    } catch (err) {
      await response.discard().catch(() => {});
      throw err;
    }
    onRecorded();
    // undici's object for this answer, trimmed in place rather than copied.
    const out = response.headers;
    for (const name in out) {
      if (out[name] === undefined || HOP_BY_HOP.has(name) || RESPONSE_DROPPED.has(name)) delete out[name];
    }
    return {
      status: response.status,
      headers: out as Record<string, string | string[]>,
      body: method === 'HEAD' || NO_BODY.has(response.status) ? (await response.discard(), null) : response.body,
      target: `${url.origin}${url.pathname}`,
      refreshed,
    };
  }
}
