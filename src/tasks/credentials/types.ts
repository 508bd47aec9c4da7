import type { Executor } from '../../db/index.js';
import type { Actor } from '../../identity/index.js';

/** `native`: a Latchkey API key. `external`: a credential from an {@link ExternalCredentialIssuer}. */
export type CredentialKind = 'native' | 'external';

/** A credential a task holds, by id only (never its secret): what its removal queues. */
export interface CredentialRef {
  kind: CredentialKind;
  /** The API key id, or the reference the external issuer knows the credential by. */
  id: string;
}

/**
 * Who a task runs as: the Latchkey user who scheduled it, or an application's end user (for whom
 * the scheduling user acts; the task's key is the scheduling user's).
 */
export type RunAs = { kind: 'user'; userId: string } | { kind: 'end_user'; endUserId: string; userId: string };

/**
 * A task's user scope: what it runs as and the credentials it holds. Stored with the task (the
 * secrets encrypted, bound to the task, its tenant and this scope).
 */
export interface UserScope {
  tenantId: string;
  runAs: RunAs;
  credentials: CredentialRef[];
}

/** The secrets of a task's credentials, as the encrypted object holds them. */
export interface TaskSecrets {
  /** The task's own API key (`lk_…`). */
  nativeKey: string;
  nativeKeyId: string;
  external?: { reference: string; secret: string; expiresAt: string | null };
}

/** The credential a run uses, chosen by the strategy from what the task holds. */
export interface ChosenCredential {
  kind: CredentialKind;
  id: string;
  secret: string;
  expiresAt: string | null;
}

export interface GrantRequest {
  actor: Actor;
  tenantId: string;
  taskId: string;
  taskType: string;
  runAs: RunAs;
}

/** Credentials granted for a task not yet written: `write` commits them with the task. */
export interface TaskGrant {
  scope: UserScope;
  secrets: TaskSecrets;
  /** In the task insert's transaction: the native key row, the plain refs, the intent released. */
  write(tx: Executor): Promise<void>;
}

/** A queued credential, as the invalidator hands it to a strategy. */
export interface QueuedCredential {
  id: string;
  tenantId: string;
  kind: CredentialKind;
  credentialId: string;
  taskId: string | null;
  reason: 'task_removed' | 'grant_intent';
  attempts: number;
}

/** What invalidating one queued credential came to. */
export type InvalidationOutcome = { id: string; ok: true } | { id: string; ok: false; error: string };

/**
 * How tasks get, use and lose credentials. Grant and use are independent: a strategy grants
 * every kind it can, and a run uses the kind the configuration names, falling back to the
 * native key for tasks that hold nothing else.
 *
 * @example
 * const strategy = createCredentialStrategy({ apiKeys, handle, credentialType: 'native' });
 * const grant = await strategy.grant({ actor, tenantId, taskId, taskType, runAs });
 * await runTransaction(handle, async (trx) => { await insertTask(trx); await grant.write(trx); });
 */
export interface CredentialStrategy {
  readonly name: 'native' | 'native+external';
  /** Grants the task its credentials (outside any transaction; `write` joins the task insert's). */
  grant(request: GrantRequest): Promise<TaskGrant>;
  /** The credential a run uses. */
  choose(secrets: TaskSecrets): ChosenCredential;
  /** Every credential the tasks hold, from the plain refs (readable even when a task's secrets are not). */
  credentialIds(tx: Executor, taskIds: readonly string[]): Promise<Array<CredentialRef & { taskId: string; tenantId: string }>>;
  /** Queues every credential of the tasks for invalidation, in the caller's (deletion) transaction. Returns how many were queued. */
  markForInvalidation(tx: Executor, taskIds: readonly string[], now: Date): Promise<number>;
  /** Invalidates queued credentials (after the removal delay); one outcome per entry. */
  invalidate(entries: readonly QueuedCredential[]): Promise<InvalidationOutcome[]>;
}

/**
 * Issues credentials of another system for tasks (a cloud role, a service token). `grant` is
 * given a reference Latchkey chose and wrote down first; `invalidate` is given only that
 * reference, so a grant whose answer was lost (a crash, a timeout) is still invalidated.
 * `invalidate` of an unknown reference must succeed (nothing to do).
 */
export interface ExternalCredentialIssuer {
  grant(request: { reference: string; tenantId: string; taskId: string; taskType: string; userId: string; endUserId?: string; signal?: AbortSignal }): Promise<{ secret: string; expiresAt?: string | null }>;
  invalidate(request: { reference: string; tenantId: string; signal?: AbortSignal }): Promise<void>;
}
