// The SDK (`import { LatchkeyClient } from 'latchkey/client'`): a typed client of the HTTP API,
// built on openapi-fetch with types generated from /openapi.json (openapi.ts, `npm run gen:client`),
// and the webhook verifier. It imports nothing of the server.
export { LatchkeyClient } from './client.js';
export type { LatchkeyClientOptions, ConnectionOwner, BodyOf, QueryOf } from './transport.js';
export type { ProxyInit } from './proxy.js';
export { LatchkeyApiError, LatchkeyNetworkError } from './errors.js';
export type { ApiErrorCode } from './errors.js';
export { verifyWebhook, WebhookVerificationError } from './verify-webhook.js';
export type { VerifyWebhookOptions, WebhookEvent, WebhookEventType } from './verify-webhook.js';
export type { paths, components, operations } from './openapi.js';
export type { Schemas } from './schemas.js';
