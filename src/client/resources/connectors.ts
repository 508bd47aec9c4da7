import type { BodyOf, QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.connectors`: a provider with its client or API credential (secrets are write-only).
 *
 * @example
 * const connector = await latchkey.connectors.create({ name: 'GitHub', provider: 'github', config: { clientId, clientSecret } });
 */
export function connectors(t: Transport) {
  return {
    create: (body: BodyOf<'createConnector'>) => t.send(t.http.POST('/api/v1/connectors', { body })),
    list: (query: QueryOf<'listConnectors'> = {}) => t.send(t.http.GET('/api/v1/connectors', { params: { query } })),
    get: (id: string) => t.send(t.http.GET('/api/v1/connectors/{id}', { params: { path: { id } } })),
    update: (id: string, body: BodyOf<'updateConnector'>) => t.send(t.http.PATCH('/api/v1/connectors/{id}', { params: { path: { id } }, body })),
    delete: (id: string) => t.send(t.http.DELETE('/api/v1/connectors/{id}', { params: { path: { id } } })),
  };
}

/**
 * `latchkey.providers`: the catalog connectors are made from.
 *
 * @example
 * const github = await latchkey.providers.get('github');
 */
export function providers(t: Transport) {
  return {
    list: () => t.send(t.http.GET('/api/v1/providers')),
    get: (id: string) => t.send(t.http.GET('/api/v1/providers/{id}', { params: { path: { id } } })),
  };
}
