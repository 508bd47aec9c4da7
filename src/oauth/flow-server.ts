import type * as oauth from 'oauth4webapi';
import type { ResolvedConnector } from '../connectors/index.js';
import type { Outbound } from '../outbound/index.js';

/** A server's metadata, plus whether its issuer is known (the `iss` checks need one). */
export interface ServerMetadata {
  as: oauth.AuthorizationServer;
  issuerKnown: boolean;
}

export interface ServerResolver {
  /**
   * The authorization server of an OAuth connector: discovered through the outbound module's cache
   * (per issuer, shared by the flow and the token client) or taken from the template.
   */
  metadata(resolved: ResolvedConnector): Promise<ServerMetadata>;
}

/**
 * @example
 * const servers = createServerResolver(createOutbound());
 * const { as } = await servers.metadata(await connectors.getResolved(tenantId, connectorId));
 */
export function createServerResolver(outbound: Outbound): ServerResolver {
  return {
    async metadata(resolved) {
      const config = resolved.provider.oauth;
      if (!config) throw new TypeError('The connector has no OAuth configuration.');
      if (config.discovery === 'oidc') return { as: await outbound.discovery.metadata(config.issuer), issuerKnown: true };
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
