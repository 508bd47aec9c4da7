import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { TASK_STATUSES, type Tasks } from '../../tasks/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID, EXAMPLE_TIMES as AT } from '../examples.js';
import { errorResponses, idSchema, noContent, timestampSchema, withRequestExample } from '../schemas.js';

export interface TaskRoutesOptions {
  tasks: Tasks;
}

const read = { permission: 'tasks:read' } as const;
const write = { permission: 'tasks:write' } as const;

const TASK_ID = 'tsk_5Jq8ZrT2mVx0LbN7cYw3Hd';

const TASK_EXAMPLE = {
  id: TASK_ID,
  type: 'connector_request',
  key: null,
  owner: { tenantId: ID.tenant, userId: ID.user },
  params: { connectorId: ID.perUserConnector, method: 'GET', path: '/user' },
  schedule: { cron: '0 * * * *', timezone: 'Europe/Paris' },
  status: 'scheduled',
  enabled: true,
  attempts: 0,
  nextRunAt: AT.inAnHour,
  lastRunAt: AT.now,
  lastOutcome: 'succeeded',
  lastError: null,
  lastResult: { status: 200, at: AT.now, bytes: 1432 },
  runAs: { kind: 'end_user', endUserId: 'customer-42', userId: ID.user },
  credentials: [{ kind: 'native', id: ID.apiKey }],
  progress: null,
  createdAt: AT.created,
  updatedAt: AT.now,
};

const RUN_EXAMPLE = { slot: AT.now, attempt: 1, startedAt: AT.now, finishedAt: AT.now, durationMs: 212, outcome: 'succeeded', errorCode: null, error: null };

const scheduleSchema = z
  .union([
    z.object({ at: timestampSchema.describe('Once, at this time.') }),
    z.object({ every: z.union([z.string(), z.number()]).describe('At this interval (`"10m"` or milliseconds), first run now.') }),
    z.object({ cron: z.string().describe('A cron expression (5 or 6 fields).'), timezone: z.string().optional().describe('An IANA time zone; default UTC.') }),
  ])
  .meta({ id: 'TaskSchedule', description: 'When a task runs: `{at}`, `{every}` or `{cron, timezone?}`; absent or null: once, now.', examples: [{ cron: '0 * * * *', timezone: 'Europe/Paris' }] });

const runAsSchema = z
  .union([
    z.object({ kind: z.literal('user'), userId: z.string() }),
    z.object({ kind: z.literal('end_user'), endUserId: z.string(), userId: z.string().describe('The user who scheduled the task; its key is theirs.') }),
  ])
  .meta({ id: 'TaskRunAs', description: 'Who a task runs as.', examples: [{ kind: 'user', userId: ID.user }] });

const taskSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    key: z.string().nullable(),
    owner: z.object({ tenantId: z.string(), userId: z.string().nullable() }).nullable(),
    params: z.unknown().describe('The params as the task type parsed them (never a secret).'),
    schedule: scheduleSchema.nullable(),
    status: z.enum(TASK_STATUSES),
    enabled: z.boolean(),
    attempts: z.number().describe('Attempts started in the current run slot.'),
    nextRunAt: timestampSchema.nullable(),
    lastRunAt: timestampSchema.nullable(),
    lastOutcome: z.enum(['succeeded', 'failed', 'timed_out', 'lease_expired']).nullable(),
    lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
    lastResult: z.unknown().describe('The summary the last successful run returned (never a secret), or null.'),
    runAs: runAsSchema.nullable(),
    credentials: z
      .array(z.object({ kind: z.enum(['native', 'external']), id: z.string() }))
      .describe('What the task holds, by id: its API key (`native`, in the owner\'s key list with `kind: "task"`) and an external credential when an issuer granted one.'),
    progress: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe('What the latest run last reported of its progress (`{"phase":"reencrypting","done":1500,"total":42000}`), kept once it ends; null before any report. Never a secret.'),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'Task', description: 'A stored task (never a secret).', examples: [TASK_EXAMPLE] });

const runSchema = z.object({
  slot: timestampSchema,
  attempt: z.number(),
  startedAt: timestampSchema,
  finishedAt: timestampSchema,
  durationMs: z.number(),
  outcome: z.enum(['succeeded', 'failed', 'timed_out', 'lease_expired']),
  errorCode: z.string().nullable(),
  error: z.string().nullable(),
});

const taskWithRunsSchema = taskSchema
  .extend({ runs: z.array(runSchema).describe('The latest runs, newest first.') })
  .meta({ id: 'TaskWithRuns', description: 'A task and its latest runs.', examples: [{ ...TASK_EXAMPLE, runs: [RUN_EXAMPLE] }] });

const createBody = z.object({
  type: z.string().describe('A registered task type, such as `connector_request`.'),
  params: z.unknown().optional().describe('Parsed by the type\'s schema; stored in plain: never put a secret here.'),
  schedule: scheduleSchema.nullable().optional(),
  runAs: z
    .union([z.literal('caller'), z.object({ endUserId: z.string() })])
    .optional()
    .describe('`"caller"`: run as you, with a task API key granted now (no more than your permissions). `{endUserId}`: act for an end user (needs connectors:use too).'),
  enabled: z.boolean().optional(),
});

const params = z.object({ id: idSchema });
const listQuery = z.object({
  type: z.string({ error: 'must be a string' }).max(64, { error: 'is too long' }).optional(),
  status: z.enum(TASK_STATUSES, { error: `must be one of ${TASK_STATUSES.join(', ')}` }).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(500, { error: 'must be at most 500' }).optional(),
  after: z.string({ error: 'must be a string' }).max(200, { error: 'is too long' }).optional(),
});

/**
 * Tasks of the caller's tenant. Reads need tasks:read, changes tasks:write; every rule (what a
 * task may run as, its credentials, their invalidation) is the task service's.
 *
 * @example
 * await secured.register(taskRoutes, { tasks });
 */
export const taskRoutes: FastifyPluginAsync<TaskRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { tasks } = options;

  app.post(
    '/tasks',
    {
      config: write,
      schema: {
        tags: ['tasks'],
        operationId: 'createTask',
        summary: 'Schedule a task',
        description:
          'Needs tasks:write. With `runAs` the task is granted its credentials now (a task API key of yours, limited to ' +
          'the permissions of the key you call with) and runs with them; they are invalidated when the task is removed.',
        security: SECURITY,
        body: withRequestExample(createBody, {
          type: 'connector_request',
          params: { connectorId: ID.perUserConnector, method: 'GET', path: '/user' },
          schedule: { cron: '0 * * * *', timezone: 'Europe/Paris' },
          runAs: { endUserId: 'customer-42' },
        }),
        response: { 201: taskSchema, ...errorResponses(400, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { type, params: taskParams, schedule, runAs, enabled } = request.body;
      const view = await tasks.schedule({
        type,
        ...(taskParams !== undefined ? { params: taskParams } : {}),
        ...(schedule !== undefined ? { schedule } : {}),
        ...(runAs !== undefined ? { runAs } : {}),
        ...(enabled !== undefined ? { enabled } : {}),
        owner: { tenantId: principal.tenantId, userId: principal.userId },
        actor: principal.actor,
      });
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/tasks',
    {
      config: read,
      schema: {
        tags: ['tasks'],
        operationId: 'listTasks',
        summary: 'List tasks, by id',
        description: 'Needs tasks:read. Filter by `type` and `status`; `next` is there when more follow.',
        security: SECURITY,
        querystring: listQuery,
        response: {
          200: z.object({ items: z.array(taskSchema), next: z.string().optional() }).meta({ description: 'A page of tasks.', examples: [{ items: [TASK_EXAMPLE], next: TASK_ID }] }),
          ...errorResponses(400, 403),
        },
      },
    },
    async (request) => {
      const { type, status, limit, after } = request.query;
      const page = await tasks.list({
        tenantId: principalOf(request).tenantId,
        ...(type !== undefined ? { type } : {}),
        ...(status !== undefined ? { status } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(after !== undefined ? { after } : {}),
      });
      return { items: page.tasks, ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.post(
    '/tasks/_bulk_delete',
    {
      config: write,
      schema: {
        tags: ['tasks'],
        operationId: 'bulkDeleteTasks',
        summary: 'Delete many tasks',
        description: 'Needs tasks:write. One transaction: every credential the tasks hold is queued for invalidation. Ids not found are listed, not an error.',
        security: SECURITY,
        body: withRequestExample(z.object({ ids: z.array(z.string()).min(1).max(1000) }), { ids: [TASK_ID, 'tsk_0Pq3WmZ7aRt5YcK1nLb9Xe'] }),
        response: {
          200: z
            .object({ removed: z.array(z.string()), notFound: z.array(z.string()) })
            .meta({ description: 'What was deleted, and the ids no task of the tenant has.', examples: [{ removed: [TASK_ID], notFound: ['tsk_0Pq3WmZ7aRt5YcK1nLb9Xe'] }] }),
          ...errorResponses(400, 403),
        },
      },
    },
    async (request) => tasks.removeMany(request.body.ids, { tenantId: principalOf(request).tenantId }),
  );

  app.get(
    '/tasks/:id',
    {
      config: read,
      schema: { tags: ['tasks'], operationId: 'getTask', summary: 'Get a task and its latest runs', description: 'Needs tasks:read.', security: SECURITY, params, response: { 200: taskWithRunsSchema, ...errorResponses(400, 403, 404) } },
    },
    async (request) => tasks.get(request.params.id, { tenantId: principalOf(request).tenantId }),
  );

  for (const [action, operationId, summary, description] of [
    ['_run', 'runTask', 'Run a task now', 'Needs tasks:write. Makes the task due now in a new run slot; 409 `conflict` while it runs.'],
    ['_enable', 'enableTask', 'Enable a task', 'Needs tasks:write. An enabled task is claimed when it is due.'],
    ['_disable', 'disableTask', 'Disable a task', 'Needs tasks:write. A disabled task is never claimed (a running attempt finishes).'],
  ] as const) {
    app.post(
      `/tasks/:id/${action}`,
      {
        config: write,
        schema: { tags: ['tasks'], operationId, summary, description, security: SECURITY, params, response: { 200: taskSchema, ...errorResponses(400, 403, 404, 409) } },
      },
      async (request) => {
        const scope = { tenantId: principalOf(request).tenantId };
        if (action === '_run') return tasks.runNow(request.params.id, scope);
        return tasks.setEnabled(request.params.id, action === '_enable', scope);
      },
    );
  }

  app.delete(
    '/tasks/:id',
    {
      config: write,
      schema: {
        tags: ['tasks'],
        operationId: 'deleteTask',
        summary: 'Delete a task',
        description: 'Needs tasks:write. Deletes it with its history; every credential it holds is queued for invalidation in the same transaction.',
        security: SECURITY,
        params,
        response: { 204: noContent, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      await tasks.remove(request.params.id, { tenantId: principalOf(request).tenantId });
      return reply.code(204).send(null);
    },
  );
};
