import type { QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.audit`: the tenant's audit log, newest first, with filters.
 *
 * @example
 * const { items } = await latchkey.audit.list({ action: 'connection.proxied', target: connectorId });
 */
export function audit(t: Transport) {
  return {
    list: (query: QueryOf<'listAuditEvents'> = {}) => t.send(t.http.GET('/api/v1/audit', { params: { query } })),
  };
}

/**
 * `latchkey.me`: the caller (tenant, user, API key, effective permissions).
 *
 * @example
 * const { tenant, permissions } = await latchkey.me.get();
 */
export function me(t: Transport) {
  return {
    get: () => t.send(t.http.GET('/api/v1/me')),
  };
}
