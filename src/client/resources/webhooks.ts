import type { BodyOf, QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.webhooks`: endpoints (the signing secret is answered once, at creation and roll),
 * their deliveries, and redelivery.
 *
 * @example
 * const { secret, endpoint } = await latchkey.webhooks.create({ url: 'https://app.example.com/hooks', events: ['connection.deleted'] });
 * const { items } = await latchkey.webhooks.deliveries(endpoint.id);
 */
export function webhooks(t: Transport) {
  const at = (id: string) => ({ params: { path: { id } } });
  return {
    create: (body: BodyOf<'createWebhook'>) => t.send(t.http.POST('/api/v1/webhooks', { body })),
    list: (query: QueryOf<'listWebhooks'> = {}) => t.send(t.http.GET('/api/v1/webhooks', { params: { query } })),
    get: (id: string) => t.send(t.http.GET('/api/v1/webhooks/{id}', at(id))),
    update: (id: string, body: BodyOf<'updateWebhook'>) => t.send(t.http.PATCH('/api/v1/webhooks/{id}', { ...at(id), body })),
    delete: (id: string) => t.send(t.http.DELETE('/api/v1/webhooks/{id}', at(id))),
    /** A new secret, answered once; the old one keeps signing too during the grace period. */
    rollSecret: (id: string) => t.send(t.http.POST('/api/v1/webhooks/{id}/_roll_secret', at(id))),
    deliveries: (id: string, query: QueryOf<'listWebhookDeliveries'> = {}) =>
      t.send(t.http.GET('/api/v1/webhooks/{id}/deliveries', { params: { path: { id }, query } })),
    redeliver: (id: string, deliveryId: string) =>
      t.send(t.http.POST('/api/v1/webhooks/{id}/deliveries/{deliveryId}/_redeliver', { params: { path: { id, deliveryId } } })),
  };
}
