import type { Selectable } from 'kysely';
import type { ApiKeysTable } from '../db/index.js';
import { maskApiKey } from './format.js';
import type { UsagePolicy } from './usage.js';

export type ApiKeyRow = Selectable<ApiKeysTable>;

export interface RateLimit {
  /** Requests allowed per window. */
  limit: number;
  windowMs: number;
}

export interface Credits {
  /** Uses left (as last flushed to the database). */
  remaining: number;
  /** Credits added back every `intervalMs`, or null when they are never refilled. */
  refill: { amount: number; intervalMs: number } | null;
}

/**
 * What anyone other than the holder at creation ever sees of an API key: metadata and a masked
 * form. It never holds the secret or its hash.
 */
export interface ApiKeyView {
  id: string;
  tenantId: string;
  name: string;
  /** `lk_<id>_…<last 4>`. */
  masked: string;
  ownerId: string;
  /** Role names the key is limited to, or null when it carries all of its owner's permissions. */
  roles: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  rateLimit: RateLimit | null;
  credits: Credits | null;
  meta: Record<string, unknown> | null;
  /** `task`: granted to a task that runs as its owner, and invalidated when the task is removed. */
  kind: 'user' | 'task';
  /** The task a `task` key belongs to. */
  taskId: string | null;
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function rowRoles(row: Pick<ApiKeyRow, 'roles'>): string[] | null {
  return parseJson<string[]>(row.roles);
}

export function rowCredits(row: Pick<ApiKeyRow, 'credits_remaining' | 'credits_refill'>): Credits | null {
  if (row.credits_remaining === null) return null;
  return { remaining: Number(row.credits_remaining), refill: parseJson<Credits['refill']>(row.credits_refill) };
}

/** The limits the usage gate applies to the key. */
export function rowUsagePolicy(row: Pick<ApiKeyRow, 'rate_limit' | 'credits_remaining' | 'credits_refill'>): UsagePolicy {
  return { rateLimit: parseJson<RateLimit>(row.rate_limit), credits: rowCredits(row) };
}

export function toView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    masked: maskApiKey(row.id, row.last4),
    ownerId: row.owner_id,
    roles: rowRoles(row),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
    rateLimit: parseJson<RateLimit>(row.rate_limit),
    credits: rowCredits(row),
    meta: parseJson<Record<string, unknown>>(row.meta),
    kind: row.kind === 'task' ? 'task' : 'user',
    taskId: row.task_id,
  };
}
