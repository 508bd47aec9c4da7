import pLimit from 'p-limit';
import type { ApiKeyService } from '../../apikeys/index.js';
import { LatchkeyError, newId, systemClock, type Clock, type Logger } from '../../core/index.js';
import type { DatabaseHandle, Executor } from '../../db/index.js';
import { SYSTEM_ACTOR } from '../../identity/index.js';
import type {
  ChosenCredential,
  CredentialKind,
  CredentialRef,
  CredentialStrategy,
  ExternalCredentialIssuer,
  GrantRequest,
  InvalidationOutcome,
  QueuedCredential,
  TaskGrant,
  TaskSecrets,
} from './types.js';

export interface CredentialStrategyOptions {
  handle: DatabaseHandle;
  apiKeys: Pick<ApiKeyService, 'prepareTaskKey' | 'revokeMany'>;
  /** With an issuer, every task is also granted an external credential (`native+external`). */
  issuer?: ExternalCredentialIssuer;
  /** Which credential a run uses: `external` needs an issuer; tasks without one fall back to their native key. Default `native`. */
  credentialType?: 'native' | 'external';
  /** Bound on one call to the issuer (default 10 s). */
  issuerTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
}

const CHUNK = 500;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** One sentence for a failed invalidation, without the error's own text (it may quote a secret). */
function failureSentence(err: unknown): string {
  if (err instanceof LatchkeyError) return err.message.slice(0, 300);
  return 'The issuer did not confirm the invalidation; it is retried.';
}

/**
 * The strategy the configuration asks for: `native+external` when an issuer is configured (grant
 * both kinds, so switching `credentialType` later needs no task to be rescheduled), else
 * `native`. Throws a TypeError for `credentialType: 'external'` without an issuer.
 *
 * @example
 * const strategy = createCredentialStrategy({ handle, apiKeys: apiKeys.service, issuer, credentialType: 'external' });
 * strategy.name; // 'native+external'
 */
export function createCredentialStrategy(options: CredentialStrategyOptions): CredentialStrategy {
  const { handle, apiKeys, issuer, logger } = options;
  const clock = options.clock ?? systemClock;
  const credentialType = options.credentialType ?? 'native';
  const issuerTimeoutMs = options.issuerTimeoutMs ?? 10_000;
  if (credentialType !== 'native' && credentialType !== 'external') throw new TypeError('"credentialType" must be "native" or "external".');
  if (credentialType === 'external' && !issuer) throw new TypeError('"credentialType" is "external" but no external credential issuer is configured.');

  async function writeRefs(tx: Executor, tenantId: string, taskId: string, refs: readonly CredentialRef[]): Promise<void> {
    const now = clock.now().toISOString();
    await tx
      .insertInto('task_credentials')
      .values(refs.map((ref) => ({ task_id: taskId, tenant_id: tenantId, kind: ref.kind, credential_id: ref.id, created_at: now })))
      .execute();
  }

  async function grantExternal(request: GrantRequest, external: ExternalCredentialIssuer): Promise<{ reference: string; secret: string; expiresAt: string | null }> {
    const reference = newId('tcx');
    const now = clock.now().toISOString();
    // The intent, committed before the issuer is asked: should the task's own write fail (or this
    // process die), the credential is still queued, and invalidated after the delay.
    await handle.db
      .insertInto('credentials_to_invalidate')
      .values({ id: newId('inv'), tenant_id: request.tenantId, kind: 'external', credential_id: reference, task_id: request.taskId, reason: 'grant_intent', queued_at: now, next_attempt_at: now, last_error: null })
      .execute();
    try {
      const granted = await external.grant({
        reference,
        tenantId: request.tenantId,
        taskId: request.taskId,
        taskType: request.taskType,
        userId: request.runAs.userId,
        ...(request.runAs.kind === 'end_user' ? { endUserId: request.runAs.endUserId } : {}),
        signal: AbortSignal.timeout(issuerTimeoutMs),
      });
      if (typeof granted?.secret !== 'string' || granted.secret.length === 0) throw new TypeError('The issuer answered without a secret.');
      return { reference, secret: granted.secret, expiresAt: granted.expiresAt ?? null };
    } catch (err) {
      logger?.warn({ err, taskId: request.taskId }, 'The external credential issuer did not grant a task its credential.');
      throw new LatchkeyError('issuer_unavailable', 'The external credential issuer did not grant the task its credential; nothing was scheduled, try again later.', { cause: err });
    }
  }

  const strategy: CredentialStrategy = {
    name: issuer ? 'native+external' : 'native',

    async grant(request): Promise<TaskGrant> {
      const key = await apiKeys.prepareTaskKey(request.actor, request.tenantId, { taskId: request.taskId, name: `task ${request.taskType} ${request.taskId}` });
      const external = issuer ? await grantExternal(request, issuer) : undefined;
      const refs: CredentialRef[] = [{ kind: 'native', id: key.id }, ...(external ? [{ kind: 'external' as const, id: external.reference }] : [])];
      const secrets: TaskSecrets = { nativeKey: key.key, nativeKeyId: key.id, ...(external ? { external } : {}) };
      return {
        scope: { tenantId: request.tenantId, runAs: request.runAs, credentials: refs },
        secrets,
        async write(tx) {
          await key.insert(tx);
          await writeRefs(tx, request.tenantId, request.taskId, refs);
          // The task holds the external credential now: its removal queues it again.
          if (external) await tx.deleteFrom('credentials_to_invalidate').where('kind', '=', 'external').where('credential_id', '=', external.reference).execute();
        },
      };
    },

    choose(secrets): ChosenCredential {
      if (credentialType === 'external' && secrets.external) {
        return { kind: 'external', id: secrets.external.reference, secret: secrets.external.secret, expiresAt: secrets.external.expiresAt };
      }
      return { kind: 'native', id: secrets.nativeKeyId, secret: secrets.nativeKey, expiresAt: null };
    },

    async credentialIds(tx, taskIds) {
      const out: Array<CredentialRef & { taskId: string; tenantId: string }> = [];
      for (const ids of chunks(taskIds)) {
        const rows = await tx.selectFrom('task_credentials').select(['task_id', 'tenant_id', 'kind', 'credential_id']).where('task_id', 'in', ids).execute();
        for (const row of rows) out.push({ taskId: row.task_id, tenantId: row.tenant_id, kind: row.kind as CredentialKind, id: row.credential_id });
      }
      return out;
    },

    async markForInvalidation(tx, taskIds, now) {
      const refs = await strategy.credentialIds(tx, taskIds);
      const at = now.toISOString();
      let queued = 0;
      for (const batch of chunks(refs)) {
        const result = await tx
          .insertInto('credentials_to_invalidate')
          .values(batch.map((ref) => ({ id: newId('inv'), tenant_id: ref.tenantId, kind: ref.kind, credential_id: ref.id, task_id: ref.taskId, reason: 'task_removed', queued_at: at, next_attempt_at: at, last_error: null })))
          .onConflict((oc) => oc.columns(['kind', 'credential_id']).doNothing())
          .executeTakeFirst();
        queued += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      for (const ids of chunks(taskIds)) await tx.deleteFrom('task_credentials').where('task_id', 'in', ids).execute();
      return queued;
    },

    async invalidate(entries) {
      const outcomes: InvalidationOutcome[] = [];
      const nativeByTenant = new Map<string, QueuedCredential[]>();
      for (const entry of entries) {
        if (entry.kind === 'native') nativeByTenant.set(entry.tenantId, [...(nativeByTenant.get(entry.tenantId) ?? []), entry]);
      }
      for (const [tenantId, native] of nativeByTenant) {
        try {
          await apiKeys.revokeMany(SYSTEM_ACTOR, tenantId, native.map((e) => e.credentialId), { reason: 'task_credential_invalidated' });
          for (const entry of native) outcomes.push({ id: entry.id, ok: true });
        } catch (err) {
          logger?.warn({ err }, 'Revoking task API keys failed; they are retried.');
          for (const entry of native) outcomes.push({ id: entry.id, ok: false, error: 'Revoking the API key failed; it is retried.' });
        }
      }
      const external = entries.filter((e) => e.kind === 'external');
      const limit = pLimit(4);
      await Promise.all(
        external.map((entry) =>
          limit(async () => {
            if (!issuer) {
              outcomes.push({ id: entry.id, ok: false, error: 'No external credential issuer is configured to invalidate this credential; it is kept until one is.' });
              return;
            }
            try {
              await issuer.invalidate({ reference: entry.credentialId, tenantId: entry.tenantId, signal: AbortSignal.timeout(issuerTimeoutMs) });
              outcomes.push({ id: entry.id, ok: true });
            } catch (err) {
              logger?.warn({ err, reference: entry.credentialId }, 'The external credential issuer did not invalidate a credential; it is retried.');
              outcomes.push({ id: entry.id, ok: false, error: failureSentence(err) });
            }
          }),
        ),
      );
      return outcomes;
    },
  };
  return strategy;
}
