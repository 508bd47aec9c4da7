import { resolveForEndUser, type ConnectorService } from '../connectors/index.js';
import { LatchkeyError } from '../core/index.js';
import type { ServerResolver } from './flow-server.js';
import type { ResolvedClient } from './resolved-client.js';

/**
 * The token client's view of a connector: endpoints from the template, or discovered from the
 * issuer for `oidc`-style connectors (see the outbound module's discovery cache: while discovery
 * fails, the endpoints last discovered in this process are used). The client secret is
 * non-enumerable: it never reaches a log line.
 *
 * A connector whose endpoints depend on each end user's config (a Zendesk subdomain) is resolved
 * with the connection's: `connectionConfig` reads it, and only such connectors call it.
 *
 * @example
 * const tokens = createTokenClient({ store, outbound, resolveClient: createClientResolver({ connectors, servers }) });
 */
export function createClientResolver(deps: {
  connectors: ConnectorService;
  servers: ServerResolver;
}): (tenantId: string, connectorId: string, connectionConfig?: () => Promise<Record<string, string> | undefined>) => Promise<ResolvedClient> {
  return async (tenantId, connectorId, connectionConfig) => {
    let resolved = await deps.connectors.getResolved(tenantId, connectorId);
    if (resolved.endUserFields.length > 0) {
      const config = await connectionConfig?.();
      if (config === undefined) {
        throw new LatchkeyError('not_connected', `The connector ${connectorId} has no connection for that user; connect the account first.`);
      }
      resolved = resolveForEndUser(resolved, config);
    }
    const { connector } = resolved;
    const config = resolved.provider.oauth;
    const authType = connector.authType;
    if ((authType !== 'oauth_authorization_code' && authType !== 'oauth_client_credentials') || config === undefined) {
      throw new LatchkeyError('invalid_request', `The connector ${connectorId} does not use OAuth (its auth type is ${authType}); it has no tokens to hand out.`, { details: { reason: 'not_oauth' } });
    }
    let as;
    try {
      ({ as } = await deps.servers.metadata(resolved));
    } catch (err) {
      if (err instanceof LatchkeyError) throw err;
      throw new LatchkeyError('provider_unavailable', `The OpenID Connect metadata of ${resolved.template.name} could not be read.`, { cause: err });
    }
    const client: ResolvedClient = {
      connectorId,
      tokenMode: connector.tokenMode,
      authType,
      tokenUrl: as.token_endpoint as string,
      ...(as.revocation_endpoint !== undefined ? { revocationUrl: as.revocation_endpoint } : {}),
      ...(config.discovery === 'oidc' ? { issuer: as.issuer } : {}),
      clientId: resolved.clientId ?? '',
      clientAuthentication: config.clientAuthentication,
      scopes: authType === 'oauth_client_credentials' ? [...config.clientCredentialsScopes] : [...config.scopes],
      scopeSeparator: config.scopeSeparator,
      tokenParams: { ...config.tokenParams },
    };
    if (resolved.clientSecret !== undefined) Object.defineProperty(client, 'clientSecret', { value: resolved.clientSecret, enumerable: false });
    return client;
  };
}
