import type { Generated } from 'kysely';

/** Tenants' data keys, each wrapped (AES-256-GCM) by a master key. */
export interface DataKeysTable {
  id: string;
  tenant_id: string;
  /** Sealed data key; its header names the master key that wrapped it. */
  wrapped_key: string;
  master_key_id: string;
  /** `primary`: encrypts new values; `retired`: decrypts only, until `rekey --data-keys` empties it. */
  state: 'primary' | 'retired';
  created_at: string;
  updated_at: string;
}

/** Every object of the encrypted object store. */
export interface ObjectsTable {
  id: string;
  type: string;
  tenant_id: string;
  model_version: number;
  /** JSON of the plain attributes. */
  attributes: string;
  /** JSON map of attribute name to sealed value. */
  secrets: string;
  /** JSON list of the attribute names bound into every secret's AAD when it was written. */
  aad_attributes: string;
  /** Data key that sealed the secrets, or null when the object holds none. */
  data_key_id: string | null;
  revision: Generated<number>;
  created_at: string;
  updated_at: string;
}

/** Store-wide maintenance jobs, so a crashed run is resumed rather than restarted. */
export interface MaintenanceRunsTable {
  id: string;
  kind: string;
  started_at: string;
  finished_at: string | null;
}

export interface TenantsTable {
  id: string;
  name: string;
  /** 1 for the system tenant (created on first start), whose admins administer every tenant. */
  system: Generated<number>;
  created_at: string;
  updated_at: string;
}

export interface UsersTable {
  id: string;
  tenant_id: string;
  username: string;
  display_name: string | null;
  /** scrypt hash in PHC-like form; null for users who cannot log in with a password. */
  password_hash: string | null;
  disabled: Generated<number>;
  created_at: string;
  updated_at: string;
}

export interface GroupsTable {
  id: string;
  tenant_id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  tenant_id: string;
  created_at: string;
}

export interface RolesTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  /** JSON array of `resource:action` strings. */
  permissions: string;
  created_at: string;
  updated_at: string;
}

export interface RoleBindingsTable {
  tenant_id: string;
  role_name: string;
  principal_type: 'user' | 'group';
  principal_id: string;
  created_at: string;
}

export interface SessionsTable {
  /** SHA-256 of the session token; the token itself is only in the cookie. */
  id: string;
  tenant_id: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  owner_id: string;
  name: string;
  /** JSON array of role names the key is limited to, or null for all of its owner's. */
  roles: string | null;
  /** HMAC-SHA-256 (hex) of the secret under the tenant's pepper. */
  hash: string;
  /** The hash before the last roll, accepted until previous_expires_at. */
  previous_hash: string | null;
  previous_expires_at: string | null;
  last4: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  /** JSON `{limit, windowMs}`. */
  rate_limit: string | null;
  credits_remaining: number | null;
  /** JSON `{amount, intervalMs}`. */
  credits_refill: string | null;
  credits_refilled_at: string | null;
  meta: string | null;
  /** `user`, or `task` for a key granted to a task (which `task_id` names). */
  kind: Generated<string>;
  task_id: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * One fixed rate-limit window per API key, shared by every process on the database. A process
 * leases a block of slots by raising `used` (never above the key's limit) and admits requests
 * from the block locally; a newer `window_start` resets the count.
 */
export interface ApiKeyRateWindowsTable {
  key_id: string;
  /** UTC ISO-8601 start of the window `used` counts for; windows are aligned on multiples of `windowMs`. */
  window_start: string;
  /** Slots leased out in that window, summed over all processes; never above the limit. */
  used: number;
  /** Slots granted by the latest lease, read back through `RETURNING` so one statement suffices. */
  granted: number;
}

export interface AuditEventsTable {
  id: string;
  tenant_id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  /** JSON object; never a secret. */
  details: string | null;
}

export interface InvalidationsTable {
  seq: Generated<number>;
  /** `api_key` | `user` | `tenant`. */
  scope: string;
  tenant_id: string;
  subject_id: string | null;
  at: string;
}

/** One webhook message to one endpoint; retried until it succeeds or its attempts run out. */
export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  /** `webhook-id`: the same on every attempt (receivers deduplicate on it). */
  message_id: string;
  event_type: string;
  /** The exact JSON body that is signed and sent; never a token or secret. */
  payload: string;
  /** `pending` | `succeeded` | `failed`. */
  status: string;
  attempts: Generated<number>;
  /** Attempts may go on while `attempts` is below this (a redelivery raises it). */
  attempts_allowed: number;
  /** When the next attempt is due. */
  next_attempt_at: string;
  /** The task that holds the next attempt; only its run records an outcome. */
  claim_token: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** One attempt at a delivery: never the response body beyond a short snippet. */
export interface WebhookDeliveryAttemptsTable {
  id: string;
  delivery_id: string;
  tenant_id: string;
  at: string;
  status_code: number | null;
  error_code: string | null;
  duration_ms: number;
  response_snippet: string | null;
}

/**
 * One stored task. The row is its own lease: a claim moves it to `running` with a lease end and
 * the next fencing token; only that token's holder records the outcome.
 */
export interface TasksTable {
  id: string;
  /** A type registered in code; a process claims only the types it knows. */
  type: string;
  /** Unique name of a task that must exist once (built-in maintenance), or null. */
  key: string | null;
  /** The owner's tenant and user; null for Latchkey's own maintenance tasks. */
  tenant_id: string | null;
  owner_id: string | null;
  /** JSON of the params as the type's schema parsed them. */
  params: string;
  /** JSON `{at}`, `{every}` or `{cron, timezone?}`; null: once, now. */
  schedule: string | null;
  /** `scheduled` | `running` | `succeeded` | `failed`. */
  status: string;
  enabled: Generated<number>;
  /** Attempts started in the current run slot (a claim adds one; a success or a new slot resets it). */
  attempts: Generated<number>;
  /** The scheduled time the current or next run belongs to; with the id, its idempotency key. */
  run_slot: string;
  /** When the next attempt is due (a retry is due after its backoff, in the same slot). */
  next_run_at: string;
  /** Fencing token: one more on every claim. */
  lease_token: Generated<number>;
  /** The worker holding the lease, while running. */
  lease_owner: string | null;
  lease_expires_at: string | null;
  last_run_at: string | null;
  last_outcome: string | null;
  last_error_code: string | null;
  /** One sentence; never a secret. */
  last_error: string | null;
  /** JSON: what the task runs as (`{kind: 'user', userId}` or `{kind: 'end_user', endUserId, userId}`), or null. Not secret. */
  run_as: string | null;
  /** JSON summary the last successful run returned (never a secret), or null. */
  last_result: string | null;
  created_at: string;
  updated_at: string;
  /** JSON: what the latest run last reported through `context.progress`; null before any report. */
  progress: string | null;
}

/** A credential a task holds, in plain (ids, never secrets): what removing the task queues for invalidation. */
export interface TaskCredentialsTable {
  task_id: string;
  tenant_id: string;
  /** `native` (an API key id) or `external` (the reference the external issuer knows it by). */
  kind: string;
  credential_id: string;
  created_at: string;
}

/** Credentials waiting to be invalidated: queued by a task's removal, or an intent written before an external grant. */
export interface CredentialsToInvalidateTable {
  id: string;
  tenant_id: string;
  kind: string;
  credential_id: string;
  task_id: string | null;
  /** `task_removed` or `grant_intent`. */
  reason: string;
  queued_at: string;
  attempts: Generated<number>;
  next_attempt_at: string;
  last_error: string | null;
}

/** One finished run (or attempt) of a task; only the latest few per task are kept. */
export interface TaskRunsTable {
  id: string;
  task_id: string;
  run_slot: string;
  attempt: number;
  lease_token: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /** `succeeded` | `failed` | `timed_out` | `lease_expired`. */
  outcome: string;
  error_code: string | null;
  error: string | null;
}

export interface Database {
  tenants: TenantsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  roles: RolesTable;
  role_bindings: RoleBindingsTable;
  sessions: SessionsTable;
  api_keys: ApiKeysTable;
  api_key_rate_windows: ApiKeyRateWindowsTable;
  audit_events: AuditEventsTable;
  invalidations: InvalidationsTable;
  maintenance_runs: MaintenanceRunsTable;
  data_keys: DataKeysTable;
  objects: ObjectsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_delivery_attempts: WebhookDeliveryAttemptsTable;
  tasks: TasksTable;
  task_runs: TaskRunsTable;
  task_credentials: TaskCredentialsTable;
  credentials_to_invalidate: CredentialsToInvalidateTable;
}
