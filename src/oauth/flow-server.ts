import * as oauth from 'oauth4webapi';
import type { ResolvedConnector } from '../connectors/index.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** How the flow talks to authorization servers. */
export interface FlowHttp {
  fetch: typeof fetch | undefined;
  /** Per request: discovery and token exchange each get this long. */
  timeoutMs: number;
  /** Loud opt-in, for tests against a local server: http allowed, and only on a loopback host. */
  allowInsecureRequests: boolean;
}

/** A server's metadata, plus whether its issuer is known (the `iss` checks need one). */
export interface ServerMetadata {
  as: oauth.AuthorizationServer;
  issuerKnown: boolean;
}

/** oauth4webapi request options for one target URL: timeout, injected fetch, insecure opt-in. */
export function requestOptions(http: FlowHttp, target: string | URL | undefined) {
  const url = target === undefined ? undefined : new URL(target);
  const insecure = http.allowInsecureRequests && url !== undefined && url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  return {
    signal: AbortSignal.timeout(http.timeoutMs),
    ...(http.fetch ? { [oauth.customFetch]: http.fetch } : {}),
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

/** The client's credentials, sent the way the provider's template says. */
export function clientAuthentication(resolved: ResolvedConnector): oauth.ClientAuth {
  const secret = resolved.clientSecret;
  if (secret === undefined) return oauth.None();
  return resolved.provider.oauth?.clientAuthentication === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

export interface ServerResolver {
  /** The authorization server of an OAuth connector: discovered (cached per issuer) or from the template. */
  metadata(resolved: ResolvedConnector): Promise<ServerMetadata>;
}

/**
 * Discovery results are cached per issuer for `cacheMs` (failures are not cached); concurrent
 * lookups of one issuer share one request.
 */
export function createServerResolver(http: FlowHttp, cacheMs: number, now: () => number): ServerResolver {
  const cache = new Map<string, { at: number; value: Promise<oauth.AuthorizationServer> }>();

  async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
    const url = new URL(issuer);
    const response = await oauth.discoveryRequest(url, requestOptions(http, url));
    const as = await oauth.processDiscoveryResponse(url, response);
    if (as.authorization_endpoint === undefined || as.token_endpoint === undefined) {
      throw new oauth.OperationProcessingError('the issuer metadata names no authorization or token endpoint', { code: oauth.INVALID_SERVER_METADATA });
    }
    return as;
  }

  return {
    async metadata(resolved) {
      const config = resolved.provider.oauth;
      if (!config) throw new TypeError('The connector has no OAuth configuration.');
      if (config.discovery === 'oidc') {
        const cached = cache.get(config.issuer);
        if (cached && now() - cached.at < cacheMs) return { as: await cached.value, issuerKnown: true };
        const value = discover(config.issuer);
        cache.set(config.issuer, { at: now(), value });
        value.catch(() => {
          if (cache.get(config.issuer)?.value === value) cache.delete(config.issuer);
        });
        return { as: await value, issuerKnown: true };
      }
      // Templates name endpoints, not an issuer: the token endpoint's origin stands in, and `iss`
      // checks are skipped since there is nothing to compare with (see flow.ts).
      const as: oauth.AuthorizationServer = {
        issuer: new URL(config.tokenUrl).origin,
        authorization_endpoint: config.authorizationUrl,
        token_endpoint: config.tokenUrl,
        ...(config.revocationUrl ? { revocation_endpoint: config.revocationUrl } : {}),
      };
      return { as, issuerKnown: false };
    },
  };
}
