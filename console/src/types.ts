// The shapes the console reads from the HTTP API (/api/v1): generated from /openapi.json
// (src/client/openapi.ts, `npm run gen:client`, checked by `npm run lint`), so they cannot drift
// from what the routes declare. Only a few console-side helpers are written here.
import type { components } from '../../src/client/openapi.js';

type Schemas = components['schemas'];

export type Permission = Schemas['Me']['permissions'][number];

export type Me = Schemas['Me'];

export type AuthType = 'none' | 'api_key' | 'basic' | 'bearer' | 'oauth_client_credentials' | 'oauth_authorization_code';
export type TokenMode = 'shared' | 'per_user';

export type Connector = Schemas['Connector'];

export type ProviderField = Schemas['ProviderField'];

export type Provider = Schemas['Provider'];

export type ConnectionStatus = 'active' | 'degraded' | 'needs_reauthorization';

export type Connection = Schemas['Connection'];

export type ApiKey = Schemas['ApiKey'];

export type IssuedApiKey = Schemas['IssuedApiKey'];

export interface Page<T> {
  items: T[];
  next?: string;
}

export type User = Schemas['User'];

export type Group = Schemas['Group'];

export type Role = Schemas['Role'];

export type RoleBinding = Schemas['RoleBinding'];

export type WebhookEvent = string;

export type WebhookEndpoint = Schemas['WebhookEndpoint'];

export type IssuedWebhookEndpoint = Schemas['IssuedWebhookEndpoint'];

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookAttempt {
  at: string;
  statusCode: number | null;
  errorCode: string | null;
  durationMs: number;
  responseSnippet: string | null;
}

export type WebhookDelivery = Schemas['WebhookDelivery'];

export type AuditEvent = Schemas['AuditEvent'];

export type Setting = Schemas['Setting'];

export interface Finding {
  status: 'ok' | 'warn' | 'fail';
  check: string;
  message: string;
  fix?: string;
}

export type Tenant = Schemas['Tenant'];

/** The events a webhook endpoint may ask for. */
// The one list of events, the server's own (a module without imports, bundled as is).
export { WEBHOOK_EVENTS } from '../../src/webhooks/events.js';

/** Every permission a role may grant (as the API's `Role.permissions` lists them). */
// The one list of permissions, the server's own (a module without imports, bundled as is).
export { PERMISSIONS } from '../../src/identity/permissions.js';

/** What the login page starts with after "Switch tenant": the user name kept, the tenant to fill in. */
export interface SwitchTo {
  username: string;
  tenant: string;
}

export type TaskStatus = 'scheduled' | 'running' | 'succeeded' | 'failed';
export const TASK_STATUSES: readonly TaskStatus[] = ['scheduled', 'running', 'succeeded', 'failed'];
export type TaskOutcome = 'succeeded' | 'failed' | 'timed_out' | 'lease_expired';

/** When a task runs: once at a time, at an interval, or on a cron expression; null: once, now. */
export type TaskSchedule = Schemas['TaskSchedule'];

export type TaskRunAs = Schemas['TaskRunAs'];

export type Task = Schemas['Task'];

export interface TaskRun {
  slot: string;
  attempt: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  outcome: TaskOutcome;
  errorCode: string | null;
  error: string | null;
}

export type TaskWithRuns = Schemas['TaskWithRuns'];
