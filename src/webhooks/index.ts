// The webhooks module: endpoints (signing secret sealed in the object store), Standard Webhooks
// signing, stored deliveries with retries, each attempt queued as task engine work.
export { createWebhooks } from './webhooks.js';
export type { Webhooks, WebhooksOptions, EmitOptions } from './webhooks.js';
export { WEBHOOK_ENDPOINT_TYPE, createWebhookEndpoints, createWebhookInput, updateWebhookInput } from './endpoints.js';
export type { WebhookEndpoints, WebhookEndpointsOptions, WebhookEndpointView, WebhookEndpointPage, IssuedWebhookEndpoint } from './endpoints.js';
export { WEBHOOK_EVENTS, isWebhookEvent, assertEventData } from './events.js';
export type { WebhookEventType } from './events.js';
export { DELIVERY_STATUSES, DeliveryStore } from './deliveries.js';
export type { DeliveryStatus, DeliveryView, DeliveryAttemptView } from './deliveries.js';
export { DeliverySender, retryDelayMs } from './sender.js';
export type { WebhookBackoff, DeliveryScheduler, AttemptRun } from './sender.js';
export { newSigningSecret, signature, signedHeaders } from './signing.js';
