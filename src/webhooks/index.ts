// The webhooks module: endpoints (signing secret sealed in the object store), Standard Webhooks
// signing, stored deliveries with retries, and the worker that sends them.
export { createWebhooks } from './webhooks.js';
export type { Webhooks, WebhooksOptions, EmitOptions } from './webhooks.js';
export { WEBHOOK_ENDPOINT_TYPE, createWebhookEndpoints, createWebhookInput, updateWebhookInput } from './endpoints.js';
export type { WebhookEndpoints, WebhookEndpointsOptions, WebhookEndpointView, WebhookEndpointPage, IssuedWebhookEndpoint } from './endpoints.js';
export { WEBHOOK_EVENTS, isWebhookEvent, assertEventData } from './events.js';
export type { WebhookEventType } from './events.js';
export { DELIVERY_STATUSES, DeliveryStore } from './deliveries.js';
export type { DeliveryStatus, DeliveryView, DeliveryAttemptView } from './deliveries.js';
export { DeliveryWorker, retryDelayMs } from './worker.js';
export type { WebhookBackoff } from './worker.js';
export { newSigningSecret, signature, signedHeaders } from './signing.js';
