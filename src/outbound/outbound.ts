import * as oauth from 'oauth4webapi';
import { LatchkeyError, systemClock, type Clock, type Logger } from '../core/index.js';
import { createDiscoveryCache, type DiscoveryCache } from './discovery.js';
import { isLoopbackHost } from './loopback.js';

/**
 * Where the egress policy goes: called with the URL of every request Latchkey makes, before it is
 * sent; throwing refuses the request. There is no policy yet (the proxy issue adds one, checked
 * after DNS and on every redirect); until then only the scheme rule of {@link Outbound.urlProblem}
 * applies.
 */
export type EgressCheck = (url: URL) => void | Promise<void>;

export interface OutboundOptions {
  /** The fetch behind every request (default the global fetch). */
  fetch?: typeof fetch;
  /** Per request, headers and body together (default 10 s). */
  timeoutMs?: number;
  /**
   * UNSAFE, for a local authorization server in development and tests: plain http is allowed to
   * loopback addresses (127.0.0.0/8, localhost, [::1]) and to nothing else. A warning is logged.
   */
  allowInsecureLoopback?: boolean;
  /** How long discovered issuer metadata is reused (default 1 hour). */
  discoveryCacheMs?: number;
  clock?: Clock;
  logger?: Logger;
  egress?: EgressCheck;
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
  /** The injected fetch behind the egress check. */
  fetch: typeof fetch;
  /** Timeout, this module's fetch, and oauth4webapi's `allowInsecureRequests` exactly when the opt-in covers `target`. */
  oauthOptions(target: string | URL): OAuthRequestOptions;
  /** OpenID Connect discovery through this module, cached per issuer (one cache per process). */
  discovery: DiscoveryCache;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_DISCOVERY_CACHE_MS = 60 * 60 * 1000;

/**
 * The outbound-HTTP module: timeouts, the injected fetch, the insecure-loopback opt-in, the
 * discovery cache and the egress hook, in one place, so that no request bypasses them.
 *
 * @example
 * const outbound = createOutbound({ timeoutMs: 5000 });
 * const response = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, outbound.oauthOptions(as.token_endpoint!));
 */
export function createOutbound(options: OutboundOptions = {}): Outbound {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new TypeError('"timeoutMs" must be a positive whole number of milliseconds.');
  const allowInsecureLoopback = options.allowInsecureLoopback === true;
  const clock = options.clock ?? systemClock;
  const base = options.fetch ?? globalThis.fetch;
  const egress = options.egress;
  if (allowInsecureLoopback) {
    options.logger?.warn('UNSAFE: allowInsecureLoopback is on: requests to providers may use plain http to loopback addresses (127.0.0.0/8, localhost, [::1]); for local test servers only.');
  }

  function urlProblem(target: string | URL): string | undefined {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return 'is not an absolute URL';
    }
    if (url.protocol === 'https:') return undefined;
    if (url.protocol !== 'http:') return 'must be an https URL';
    if (!allowInsecureLoopback) return 'uses plain http, which is refused: use https (for a local test server on a loopback address, start Latchkey with --allow-insecure-loopback)';
    if (!isLoopbackHost(url.hostname)) return 'uses plain http to a host that is not a loopback address: use https';
    return undefined;
  }

  const guarded: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (egress) await egress(url);
    return base(input, init);
  };

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
    fetch: guarded,
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
