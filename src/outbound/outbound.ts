import * as oauth from 'oauth4webapi';
import pLimit, { type LimitFunction } from 'p-limit';
import { fetch as undiciFetch } from 'undici';
import { LatchkeyError, systemClock, type Clock, type Logger } from '../core/index.js';
import { createDiscoveryCache, type DiscoveryCache } from './discovery.js';
import { createEgressAgent, type OpenConnection, type Resolve } from './egress-agent.js';
import { createEgressPolicy, type EgressPolicy } from './egress-policy.js';
import { DEFAULT_LIMITS, guardedFetch, type OutboundLimits } from './guarded-fetch.js';
import { isLoopbackHost } from './loopback.js';
import { streamRequester, type StreamRequest, type StreamResponse } from './stream-request.js';

export interface OutboundOptions {
  /**
   * The fetch behind every request (default undici's). It is handed the egress agent as
   * `init.dispatcher` and must send through it: the policy is checked in the agent's connect step.
   */
  fetch?: typeof fetch;
  /** Per request, redirects, headers and body together (default 10 s). */
  timeoutMs?: number;
  /** Per connection attempt, TLS included (default the smaller of 10 s and `timeoutMs`). */
  connectTimeoutMs?: number;
  /**
   * UNSAFE, for a local authorization server in development and tests: plain http is allowed to
   * loopback addresses (127.0.0.0/8, localhost, [::1]) and to nothing else. A warning is logged.
   */
  allowInsecureLoopback?: boolean;
  /**
   * What the egress policy lets through besides public addresses: CIDRs, addresses and host names
   * (the `egressAllow` setting). Default none: loopback, private, link-local, CGNAT, metadata,
   * unique-local, multicast and other special addresses are refused.
   */
  egressAllow?: readonly string[];
  /** DNS resolution for the egress check (default `dns.lookup`); tests inject one. */
  resolve?: Resolve;
  /** Opens a connection to checked addresses (default undici's connector); tests inject one. */
  open?: OpenConnection;
  /** Redirect and size bounds of {@link Outbound.fetch} (defaults: 5 redirects, 10 MiB each way). */
  limits?: Partial<OutboundLimits>;
  /** Requests one {@link Outbound.limit} key runs at once (default 10). */
  concurrency?: number;
  /** Requests one key may have waiting beyond those; more are refused with `rate_limited` (default 1000). */
  maxQueued?: number;
  /** How long discovered issuer metadata is reused (default 1 hour). */
  discoveryCacheMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** oauth4webapi options for one request. */
export interface OAuthRequestOptions {
  signal: AbortSignal;
  [oauth.customFetch]: (url: string, options: oauth.CustomFetchOptions<'GET' | 'POST', URLSearchParams | undefined>) => Promise<Response>;
  [oauth.allowInsecureRequests]?: true;
}

/** Every request Latchkey makes goes through one of these. */
export interface Outbound {
  readonly timeoutMs: number;
  readonly allowInsecureLoopback: boolean;
  /**
   * Why no request will ever be sent to `url` (plain http without the opt-in, or to a host that is
   * not loopback; a scheme other than http(s)), or undefined when it may be.
   */
  urlProblem(url: string | URL): string | undefined;
  /** Throws `insecure_endpoint` (a configuration error, never "retry later") when {@link urlProblem} finds one. */
  assertAllowed(url: string | URL, what: string): void;
  /** The egress policy every connection is checked against. */
  readonly egress: EgressPolicy;
  /**
   * fetch through the egress policy (checked after DNS, on every redirect), with the timeout and
   * the default limits; a refusal is `egress_refused` (403) naming the host.
   */
  fetch: typeof fetch;
  /** The same fetch with other limits (the proxy's and webhooks' own). */
  fetchWith(limits: Partial<OutboundLimits>): typeof fetch;
  /**
   * One request through the same policy, timeout and limits, bodies as Node streams and no
   * redirect followed (the proxy passes a provider's 3xx through). With `limits`, those instead.
   */
  streamWith(limits: Partial<OutboundLimits>): (request: StreamRequest) => Promise<StreamResponse>;
  /**
   * Runs `task` under the concurrency limit of `key` (a connector, a webhook endpoint): at most
   * `concurrency` at once, the rest wait in order; past `maxQueued` waiting, `rate_limited`.
   */
  limit<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Closes the pooled connections. */
  close(): Promise<void>;
  /** Timeout, this module's fetch, and oauth4webapi's `allowInsecureRequests` exactly when the opt-in covers `target`. */
  oauthOptions(target: string | URL): OAuthRequestOptions;
  /** OpenID Connect discovery through this module, cached per issuer (one cache per process). */
  discovery: DiscoveryCache;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_DISCOVERY_CACHE_MS = 60 * 60 * 1000;

/**
 * The outbound-HTTP module: the egress policy (checked after DNS at connect time and on every
 * redirect), timeouts, size limits, per-key concurrency, the insecure-loopback opt-in and the
 * discovery cache, in one place, so that no request bypasses them.
 *
 * @example
 * const outbound = createOutbound({ timeoutMs: 5000, egressAllow: ['10.1.0.0/16'] });
 * const response = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, outbound.oauthOptions(as.token_endpoint!));
 */
export function createOutbound(options: OutboundOptions = {}): Outbound {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new TypeError('"timeoutMs" must be a positive whole number of milliseconds.');
  const allowInsecureLoopback = options.allowInsecureLoopback === true;
  const clock = options.clock ?? systemClock;
  const base = options.fetch ?? (undiciFetch as unknown as typeof fetch);
  const concurrency = options.concurrency ?? 10;
  const maxQueued = options.maxQueued ?? 1000;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('"concurrency" must be a positive whole number.');
  const egress = createEgressPolicy(options.egressAllow ?? []);
  const agent = createEgressAgent({
    policy: egress,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.open ? { open: options.open } : {}),
    connectTimeoutMs: options.connectTimeoutMs ?? Math.min(10_000, timeoutMs),
  });
  const limits: OutboundLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const limiters = new Map<string, LimitFunction>();
  if (egress.allow.length > 0) options.logger?.info({ egressAllow: egress.allow }, 'The egress policy also allows these addresses and hosts.');
  if (allowInsecureLoopback) {
    options.logger?.warn('UNSAFE: allowInsecureLoopback is on: requests to providers may use plain http to loopback addresses (127.0.0.0/8, localhost, [::1]); for local test servers only.');
  }

  function urlProblem(target: string | URL): string | undefined {
    let url: URL;
    try {
      url = target instanceof URL ? target : new URL(target);
    } catch {
      return 'is not an absolute URL';
    }
    if (url.protocol === 'https:') return undefined;
    if (url.protocol !== 'http:') return 'must be an https URL';
    if (!allowInsecureLoopback) return 'uses plain http, which is refused: use https (for a local test server on a loopback address, start Latchkey with --allow-insecure-loopback)';
    if (!isLoopbackHost(url.hostname)) return 'uses plain http to a host that is not a loopback address: use https';
    return undefined;
  }

  const guarded = guardedFetch(base, agent, timeoutMs, limits);

  const outbound: Outbound = {
    timeoutMs,
    allowInsecureLoopback,
    urlProblem,
    assertAllowed(target, what) {
      const problem = urlProblem(target);
      if (problem === undefined) return;
      let shown: string;
      try {
        const url = new URL(target);
        shown = `${url.origin}${url.pathname}`;
      } catch {
        shown = 'its URL';
      }
      throw new LatchkeyError('insecure_endpoint', `The ${what} ${shown} ${problem}.`);
    },
    egress,
    fetch: guarded,
    fetchWith: (more) => guardedFetch(base, agent, timeoutMs, { ...limits, ...more }),
    streamWith: (more) => streamRequester(agent, timeoutMs, { ...limits, ...more }),
    async limit(key, task) {
      let limiter = limiters.get(key);
      if (!limiter) {
        limiter = pLimit(concurrency);
        limiters.set(key, limiter);
      }
      if (limiter.pendingCount >= maxQueued) throw new LatchkeyError('rate_limited', `Too many requests to ${key} are waiting; try again shortly.`);
      const running = limiter;
      try {
        return await running(task);
      } finally {
        if (running.activeCount === 0 && running.pendingCount === 0 && limiters.get(key) === running) limiters.delete(key);
      }
    },
    close: () => agent.close(),
    oauthOptions(target) {
      const insecure = urlProblem(target) === undefined && new URL(target).protocol === 'http:';
      return {
        signal: AbortSignal.timeout(timeoutMs),
        [oauth.customFetch]: (url, init) => guarded(url, init),
        ...(insecure ? { [oauth.allowInsecureRequests]: true as const } : {}),
      };
    },
    discovery: createDiscoveryCache(
      async (issuer) => {
        outbound.assertAllowed(issuer, 'issuer');
        const url = new URL(issuer);
        const response = await oauth.discoveryRequest(url, outbound.oauthOptions(url));
        const as = await oauth.processDiscoveryResponse(url, response);
        if (as.authorization_endpoint === undefined || as.token_endpoint === undefined) {
          throw new oauth.OperationProcessingError('the issuer metadata names no authorization or token endpoint', { code: oauth.INVALID_SERVER_METADATA });
        }
        return as;
      },
      options.discoveryCacheMs ?? DEFAULT_DISCOVERY_CACHE_MS,
      () => clock.now().getTime(),
    ),
  };
  return outbound;
}
