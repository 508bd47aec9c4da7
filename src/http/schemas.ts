import { z } from 'zod';
import { parseDuration } from '../core/index.js';
import { MIN_PASSWORD_LENGTH, NAME_PATTERN, PERMISSIONS, USERNAME_PATTERN } from '../identity/index.js';
import { errorBodySchema } from './errors.js';
import { EXAMPLE_IDS as ID, EXAMPLE_KEY, EXAMPLE_MASKED_KEY, EXAMPLE_TIMES as AT } from './examples.js';

// Request and response schemas shared by the route plugins. Request schemas never echo a value
// in their messages (a misplaced secret must not come back in a 400).

export const permissionSchema = z.enum(PERMISSIONS, { error: 'is not a known permission' });

/** Ids as Latchkey makes them (`usr_…`, `grp_…`, `ten_…`); anything else is refused before a lookup. */
export const idSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[a-z]{3}_[0-9A-Za-z]{1,40}$/, { error: 'is not a Latchkey id' });

/** API key ids: `k` + 15 base62 characters. */
export const keyIdSchema = z.string({ error: 'must be a string' }).regex(/^k[0-9A-Za-z]{15}$/, { error: 'is not an API key id' });

/** Group and custom role names. */
export const nameSchema = z.string({ error: 'must be a string' }).regex(NAME_PATTERN, {
  error: 'must be 1 to 63 letters, digits or ._:- characters, starting with a letter or digit',
});

export const usernameSchema = z.string({ error: 'must be a string' }).regex(USERNAME_PATTERN, {
  error: 'must be 1 to 128 letters, digits or ._@+- characters, starting with a letter or digit',
});

export const passwordSchema = z
  .string({ error: 'must be a string' })
  .min(MIN_PASSWORD_LENGTH, { error: `must be at least ${MIN_PASSWORD_LENGTH} characters` })
  .max(1024, { error: 'must be at most 1024 characters' });

export const idParams = z.object({ id: idSchema });

/**
 * A timestamp in an answer (`format: date-time`, RFC 3339). Output only: request fields keep
 * their own parsing.
 */
export const timestampSchema = z.iso.datetime({ offset: true });

const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;
const YEAR = 365 * DAY;

function spoken(ms: number): string {
  if (ms >= 100 * YEAR) return `${ms / YEAR} years`;
  if (ms >= YEAR && ms % YEAR === 0) return ms === YEAR ? 'a year' : `${ms / YEAR} years`;
  if (ms >= DAY && ms % DAY === 0) return `${ms / DAY} days`;
  if (ms >= SECOND && ms % SECOND === 0) return ms === SECOND ? '1 second' : `${ms / SECOND} seconds`;
  return `${ms} ms`;
}

/**
 * A duration as `"10m"`-style text or a number of milliseconds, parsed to whole milliseconds and
 * checked against `[minMs, maxMs]`.
 *
 * @example
 * durationSchema(1000, 86_400_000).parse('10m'); // 600000
 */
export function durationSchema(minMs: number, maxMs: number) {
  const range = `from ${spoken(minMs)} to ${spoken(maxMs)}`;
  return z
    .union([z.string().max(40), z.number()], {
      error: (issue) => (issue.input === undefined ? 'is required' : 'must be a duration such as "30d" or a number of milliseconds'),
    })
    .transform((value, ctx) => {
      const parsed = parseDuration(value);
      if (parsed === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration such as "30d" or a number of milliseconds' });
        return z.NEVER;
      }
      const ms = Math.round(parsed);
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `must be ${range}` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `A duration such as "30d" or "10m", or a number of milliseconds; ${range}.` });
}

// Examples of the shared components, reused by the list answers that hold them.
export const TENANT_EXAMPLE = { id: ID.tenant, name: 'acme', system: false, createdAt: AT.created, updatedAt: AT.updated };
export const USER_EXAMPLE = {
  id: ID.user,
  tenantId: ID.tenant,
  username: 'ada',
  displayName: 'Ada Lovelace',
  disabled: false,
  hasPassword: true,
  createdAt: AT.created,
  updatedAt: AT.updated,
};
export const GROUP_EXAMPLE = { id: ID.group, tenantId: ID.tenant, name: 'support', createdAt: AT.created, updatedAt: AT.updated };
export const ROLE_EXAMPLE = {
  name: 'connector-reader',
  description: 'Reads connectors and their connections.',
  permissions: ['connectors:read'],
  builtin: false,
  createdAt: AT.created,
  updatedAt: AT.updated,
};
export const ROLE_BINDING_EXAMPLE = { roleName: 'connector-reader', principal: { type: 'user', id: ID.user }, createdAt: AT.created };
export const API_KEY_EXAMPLE = {
  id: ID.apiKey,
  tenantId: ID.tenant,
  name: 'billing-service',
  masked: EXAMPLE_MASKED_KEY,
  ownerId: ID.user,
  roles: ['connector-reader'],
  createdAt: AT.created,
  expiresAt: AT.inAMonth,
  lastUsedAt: AT.updated,
  revokedAt: null,
  rateLimit: { limit: 100, windowMs: 60_000 },
  credits: { remaining: 4_200, refill: { amount: 5_000, intervalMs: 86_400_000 } },
  meta: { team: 'billing' },
  kind: 'user',
  taskId: null,
};

export const tenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    system: z.boolean().describe('The system tenant: its admins administer every tenant.'),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'Tenant', description: 'A tenant.', examples: [TENANT_EXAMPLE] });

export const userSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    username: z.string(),
    displayName: z.string().nullable(),
    disabled: z.boolean(),
    hasPassword: z.boolean().describe('Whether the user can log in with a password.'),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'User', description: 'A user of a tenant.', examples: [USER_EXAMPLE] });

export const groupSchema = z
  .object({ id: z.string(), tenantId: z.string(), name: z.string(), createdAt: timestampSchema, updatedAt: timestampSchema })
  .meta({ id: 'Group', description: 'A group of users.', examples: [GROUP_EXAMPLE] });

export const roleSchema = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    permissions: z.array(permissionSchema),
    builtin: z.boolean(),
    createdAt: timestampSchema.nullable(),
    updatedAt: timestampSchema.nullable(),
  })
  .meta({ id: 'Role', description: 'A built-in or custom role and its permissions.', examples: [ROLE_EXAMPLE] });

export const principalSchema = z.strictObject({
  type: z.enum(['user', 'group'], { error: 'must be "user" or "group"' }),
  id: idSchema,
});

export const roleBindingSchema = z
  .object({ roleName: z.string(), principal: z.object({ type: z.enum(['user', 'group']), id: z.string() }), createdAt: timestampSchema })
  .meta({ id: 'RoleBinding', description: 'A grant of a role to a user or group.', examples: [ROLE_BINDING_EXAMPLE] });

export const apiKeySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    masked: z.string().describe('`lk_<id>_…` and the last 4 characters; never the secret.'),
    ownerId: z.string(),
    roles: z.array(z.string()).nullable().describe('Roles the key is limited to; null: all of its owner\'s permissions.'),
    createdAt: timestampSchema,
    expiresAt: timestampSchema.nullable(),
    lastUsedAt: timestampSchema.nullable(),
    revokedAt: timestampSchema.nullable(),
    rateLimit: z.object({ limit: z.number(), windowMs: z.number() }).nullable(),
    credits: z
      .object({ remaining: z.number(), refill: z.object({ amount: z.number(), intervalMs: z.number() }).nullable() })
      .nullable(),
    meta: z.record(z.string(), z.unknown()).nullable(),
    kind: z.enum(['user', 'task']).describe('`task`: granted to a task that runs as its owner (see `taskId`); invalidated when the task is removed.'),
    taskId: z.string().nullable().describe('The task a `task` key belongs to; null for other keys.'),
  })
  .meta({ id: 'ApiKey', description: 'An API key\'s metadata (never its secret).', examples: [API_KEY_EXAMPLE] });

export const issuedApiKeySchema = z
  .object({
    key: z.string().describe('The whole key: shown this once, never again.'),
    apiKey: apiKeySchema,
  })
  .meta({ id: 'IssuedApiKey', description: 'The new key, shown this once, and its metadata.', examples: [{ key: EXAMPLE_KEY, apiKey: API_KEY_EXAMPLE }] });

export const noContent = z.null().describe('No content.');

/**
 * A request body with its example. zod leaves `examples` out of the input JSON Schema of a body
 * that transforms anything (a duration becomes milliseconds, a list loses its duplicates), so the
 * example goes where @fastify/swagger takes a media type's examples from: `x-examples`.
 *
 * @example
 * body: withRequestExample(rollBody, { gracePeriod: '1h' })
 */
export function withRequestExample<S extends z.ZodType>(schema: S, example: z.input<S>): S {
  return schema.meta({ 'x-examples': { example: { value: example } } });
}

const ERROR_DESCRIPTIONS = {
  400: 'The request is invalid (`validation_failed` with the fields, or `invalid_request`).',
  401: 'Authentication failed (`unauthorized`): one message for every cause.',
  403: 'The caller lacks a permission (`forbidden`) or would grant more than it holds (`insufficient_permissions`).',
  404:
    'No such object in the caller\'s tenant (`not_found`; another tenant\'s id answers the same), or no connection to ' +
    'take a token from (`not_connected`).',
  409:
    'The change conflicts with the current state (`conflict`), or the connection must be reconnected before it ' +
    'can issue tokens again (`needs_reauthorization`).',
  429: 'Too many requests (`rate_limited`, `usage_exceeded`); `Retry-After` says when to come back, when known.',
  502: 'The provider could not be reached or answered badly (`provider_unavailable`).',
  503:
    'The provider cannot issue a token right now (`connection_degraded`), the external credential issuer did not ' +
    'grant a task its credential (`issuer_unavailable`), or Latchkey is not ready (`not_ready`); ' +
    '`Retry-After` says when to try again, when known.',
} as const;

type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/**
 * Error responses of an authenticated route: 401 and 429 always, plus `statuses`.
 *
 * @example
 * schema: { response: { 200: userSchema, ...errorResponses(400, 403, 404) } }
 */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S | 401 | 429, typeof errorBodySchema> {
  const all = new Set<ErrorStatus>([...statuses, 401, 429]);
  const out: Partial<Record<ErrorStatus, typeof errorBodySchema>> = {};
  for (const status of [...all].sort()) out[status] = errorBodySchema.describe(ERROR_DESCRIPTIONS[status]);
  return out as Record<S | 401 | 429, typeof errorBodySchema>;
}

/** Error responses of a public route: only `statuses`. */
export function publicErrorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, typeof errorBodySchema> {
  const out: Partial<Record<ErrorStatus, typeof errorBodySchema>> = {};
  for (const status of statuses) out[status] = errorBodySchema.describe(ERROR_DESCRIPTIONS[status]);
  return out as Record<S, typeof errorBodySchema>;
}
