// The shapes the console reads from the HTTP API (/api/v1), as its routes declare them.

export type Permission = string;

export interface Me {
  tenant: { id: string; name: string };
  user: { id: string; username: string };
  apiKey: { id: string; name: string; masked: string } | null;
  permissions: Permission[];
}

export type AuthType = 'none' | 'api_key' | 'basic' | 'bearer' | 'oauth_client_credentials' | 'oauth_authorization_code';
export type TokenMode = 'shared' | 'per_user';

export interface Connector {
  id: string;
  name: string;
  provider: string;
  authType: AuthType;
  tokenMode: TokenMode;
  config: Record<string, string>;
  redirectUri: string | null;
  allowedReturnOrigins: string[];
  secrets: Partial<Record<string, { set: boolean }>>;
  revision: number;
  createdAt: string;
  updatedAt: string;
}

export interface ProviderField {
  name: string;
  location: 'config' | 'secrets';
  secret: boolean;
  required: boolean;
  description: string;
  authTypes: AuthType[];
  schema: { type: 'string'; format?: 'uri'; minLength: number; maxLength: number; pattern?: string; default?: string; writeOnly?: true };
}

export interface Provider {
  id: string;
  name: string;
  docsUrl: string;
  authTypes: AuthType[];
  defaultScopes: string[];
  fields: ProviderField[];
}

export type ConnectionStatus = 'active' | 'degraded' | 'needs_reauthorization';

export interface Connection {
  id: string;
  connectorId: string;
  userId: string | null;
  endUserId: string | null;
  status: ConnectionStatus;
  scopes: string[];
  expiresAt: string | null;
  lastRefreshAt: string | null;
  lastRefreshError: string | null;
  backoffUntil: string | null;
  updatedAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  masked: string;
  ownerId: string;
  roles: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  rateLimit: { limit: number; windowMs: number } | null;
  credits: { remaining: number; refill: { amount: number; intervalMs: number } | null } | null;
}

export interface IssuedApiKey {
  key: string;
  apiKey: ApiKey;
}

export interface Page<T> {
  items: T[];
  next?: string;
}

export interface User {
  id: string;
  tenantId: string;
  username: string;
  displayName: string | null;
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface Group {
  id: string;
  tenantId: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface Role {
  name: string;
  description: string | null;
  permissions: Permission[];
  builtin: boolean;
  createdAt: string | null;
  updatedAt: string | null;
}

export interface RoleBinding {
  roleName: string;
  principal: { type: 'user' | 'group'; id: string };
  createdAt: string;
}

export type WebhookEvent = string;

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: WebhookEvent[];
  description: string | null;
  enabled: boolean;
  secretRolledAt: string;
  previousSecretExpiresAt: string | null;
  revision: number;
  createdAt: string;
  updatedAt: string;
}

export interface IssuedWebhookEndpoint {
  secret: string;
  endpoint: WebhookEndpoint;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookAttempt {
  at: string;
  statusCode: number | null;
  errorCode: string | null;
  durationMs: number;
  responseSnippet: string | null;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  messageId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  attemptLog: WebhookAttempt[];
}

export interface AuditEvent {
  id: string;
  tenantId: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
}

export interface Setting {
  name: string;
  env: string;
  /** Null for the master keys, never taken as flags. */
  flag: string | null;
  secret: boolean;
  set: boolean;
  value: string | number | boolean | string[] | null;
}

export interface Finding {
  status: 'ok' | 'warn' | 'fail';
  check: string;
  message: string;
  fix?: string;
}

export interface Tenant {
  id: string;
  name: string;
  system: boolean;
  createdAt: string;
  updatedAt: string;
}

/** The events a webhook endpoint may ask for (as the API's `WebhookEndpoint.events` lists them). */
export const WEBHOOK_EVENTS = ['connection.created', 'connection.refresh_failed', 'connection.needs_reauthorization', 'connection.recovered', 'connection.deleted'] as const;

/** Every permission a role may grant (as the API's `Role.permissions` lists them). */
export const PERMISSIONS = [
  'apikeys:read',
  'apikeys:write',
  'apikeys:verify',
  'connectors:read',
  'connectors:write',
  'connectors:use',
  'connectors:token',
  'tasks:read',
  'tasks:write',
  'webhooks:read',
  'webhooks:write',
  'identity:admin',
  'audit:read',
] as const;

/** What the login page starts with after "Switch tenant": the user name kept, the tenant to fill in. */
export interface SwitchTo {
  username: string;
  tenant: string;
}

export type TaskStatus = 'scheduled' | 'running' | 'succeeded' | 'failed';
export const TASK_STATUSES: readonly TaskStatus[] = ['scheduled', 'running', 'succeeded', 'failed'];
export type TaskOutcome = 'succeeded' | 'failed' | 'timed_out' | 'lease_expired';

/** When a task runs: once at a time, at an interval, or on a cron expression; null: once, now. */
export type TaskSchedule = { at: string } | { every: string | number } | { cron: string; timezone?: string };

export type TaskRunAs = { kind: 'user'; userId: string } | { kind: 'end_user'; endUserId: string; userId: string };

export interface Task {
  id: string;
  type: string;
  key: string | null;
  owner: { tenantId: string; userId: string | null } | null;
  params: unknown;
  schedule: TaskSchedule | null;
  status: TaskStatus;
  enabled: boolean;
  attempts: number;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastOutcome: TaskOutcome | null;
  lastError: { code: string; message: string } | null;
  lastResult: unknown;
  runAs: TaskRunAs | null;
  credentials: Array<{ kind: 'native' | 'external'; id: string }>;
  progress: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

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

export interface TaskWithRuns extends Task {
  runs: TaskRun[];
}
