import type { BodyOf, ConnectionOwner, QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.connections`: connected accounts, by connector and owner (see {@link ConnectionOwner}).
 *
 * @example
 * const connection = await latchkey.connections.get(connectorId, { endUserId: 'u-42' });
 * await latchkey.connections.save(connectorId, { credential: { key: endUsersKey } }, { endUserId: 'u-42' });
 */
export function connections(t: Transport) {
  // Inside async methods, so a caller's mistake is a rejection like any other.
  const at = (id: string, owner: ConnectionOwner | undefined) => {
    const { query, headers } = t.owner(owner);
    return { params: { path: { id }, query }, headers };
  };
  return {
    list: (query: QueryOf<'listConnections'> = {}) => t.send(t.http.GET('/api/v1/connections', { params: { query } })),
    listForConnector: (id: string, query: QueryOf<'listConnectorConnections'> = {}) =>
      t.send(t.http.GET('/api/v1/connectors/{id}/connections', { params: { path: { id }, query } })),
    get: async (connectorId: string, owner?: ConnectionOwner) => t.send(t.http.GET('/api/v1/connectors/{id}/connection', at(connectorId, owner))),
    /** Stores a user's or end user's own credential on a per-user `api_key`, `basic` or `bearer` connector. */
    save: async (connectorId: string, body: BodyOf<'saveConnectionCredential'>, owner?: ConnectionOwner) =>
      t.send(t.http.PUT('/api/v1/connectors/{id}/connection', { ...at(connectorId, owner), body })),
    delete: async (connectorId: string, owner?: ConnectionOwner) => t.send(t.http.DELETE('/api/v1/connectors/{id}/connection', at(connectorId, owner))),
    refresh: async (connectorId: string, owner?: ConnectionOwner) =>
      t.send(t.http.POST('/api/v1/connectors/{id}/connection/_refresh', at(connectorId, owner))),
    /** Starts the OAuth authorization code flow: answers the provider's authorization URL to send the browser to. */
    authorize: (connectorId: string, body: BodyOf<'authorizeConnector'> = {}) =>
      t.send(t.http.POST('/api/v1/connectors/{id}/oauth/authorize', { params: { path: { id: connectorId } }, body })),
  };
}

/**
 * `latchkey.connectSessions`: a short-lived link to the hosted connect page for one end user.
 *
 * @example
 * const { url } = await latchkey.connectSessions.create({ endUser: { id: 'u-42' }, allowedConnectors: [connectorId] });
 */
export function connectSessions(t: Transport) {
  return {
    create: (body: BodyOf<'createConnectSession'>) => t.send(t.http.POST('/api/v1/connect-sessions', { body })),
  };
}

/**
 * `latchkey.tokens`: an access token (OAuth) or the connector's credential, handed out and audited.
 *
 * @example
 * const token = await latchkey.tokens.take(connectorId, { endUserId: 'u-42' });
 */
export function tokens(t: Transport) {
  return {
    take: async (connectorId: string, owner?: ConnectionOwner) => {
      const { query, headers } = t.owner(owner);
      return t.send(t.http.POST('/api/v1/connectors/{id}/token', { params: { path: { id: connectorId }, query }, headers }));
    },
  };
}
