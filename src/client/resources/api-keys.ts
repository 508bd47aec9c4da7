import type { BodyOf, QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.apiKeys`: create (the key is answered this once), list (masked), get, roll, revoke and verify.
 *
 * @example
 * const { key, apiKey } = await latchkey.apiKeys.create({ name: 'ci' });
 * await latchkey.apiKeys.revoke(apiKey.id);
 */
export function apiKeys(t: Transport) {
  return {
    create: (body: BodyOf<'createApiKey'>) => t.send(t.http.POST('/api/v1/api-keys', { body })),
    list: (query: QueryOf<'listApiKeys'> = {}) => t.send(t.http.GET('/api/v1/api-keys', { params: { query } })),
    get: (id: string) => t.send(t.http.GET('/api/v1/api-keys/{id}', { params: { path: { id } } })),
    revoke: (id: string) => t.send(t.http.DELETE('/api/v1/api-keys/{id}', { params: { path: { id } } })),
    roll: (id: string, body: BodyOf<'rollApiKey'> = {}) => t.send(t.http.POST('/api/v1/api-keys/{id}/_roll', { params: { path: { id } }, body })),
    verify: (body: BodyOf<'verifyApiKey'>) => t.send(t.http.POST('/api/v1/api-keys/_verify', { body })),
  };
}
