// The webhook events `task.succeeded` and `task.failed` on both databases: sent only to endpoints
// that list them, written in the transaction of the task's fenced finish, with the task's id,
// type, slot, attempt and error, never its params.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { LatchkeyError } from '../src/core/index.js';
import type { DialectName } from '../src/db/index.js';
import { eachDialect, LOOPBACK_EGRESS } from './support/databases.js';
import { createHttpHarness, type HttpHarness } from './support/http.js';
import { startReceiver, until, verified, type Receiver } from './support/webhook-receiver.js';

const ENV = { LATCHKEY_PUBLIC_URL: 'https://latchkey.test', LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS };

await eachDialect('task webhook events', (dialect: DialectName) => {
  describe('task.succeeded and task.failed', () => {
    let h: HttpHarness;
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
      h = await createHttpHarness(dialect, ENV, { tasks: { pollIntervalMs: 20, leaseMs: 3_600_000 } });
      h.latchkey.tasks.register({
        type: 'report.build',
        paramsSchema: z.object({ fail: z.boolean(), note: z.string() }),
        maxAttempts: 2,
        backoff: { base: '1m', max: '1m' },
        run: ({ params }) => {
          if (params.fail) throw new LatchkeyError('provider_unavailable', 'The provider did not answer.');
          return { rows: 3 };
        },
      });
    });
    after(async () => {
      await h?.close();
      await receiver?.close();
    });

    it('sends them only where asked, in the transaction of the finish, without params', async () => {
      const t = await h.tenant();
      const create = async (path: string, events: string[]) => {
        const res = await h.call({ method: 'POST', url: '/api/v1/webhooks', key: t.adminKey, body: { url: receiver.url(path), events } });
        assert.equal(res.status, 201, res.text);
        return { id: res.json.endpoint.id as string, secret: res.json.secret as string };
      };
      const tasksEndpoint = await create('/tasks', ['task.succeeded', 'task.failed']);
      const failedOnly = await create('/failed', ['task.failed']);
      // Connection events only: task events are never sent where they were not asked for.
      const connections = await create('/connections', ['connection.created', 'connection.deleted']);
      const note = `n-${randomBytes(12).toString('hex')}`;
      const owner = { tenantId: t.id, userId: t.adminId };

      const ok = await h.latchkey.tasks.schedule({ type: 'report.build', params: { fail: false, note }, owner });
      await until('the task to succeed', async () => ((await h.latchkey.tasks.get(ok.id)).status === 'succeeded' ? true : undefined));
      // The delivery was written with the outcome: there the moment the outcome is.
      const [queued] = await h.latchkey.webhooks.deliveries(t.id, tasksEndpoint.id);
      assert.equal(queued?.eventType, 'task.succeeded');

      const bad = await h.latchkey.tasks.schedule({ type: 'report.build', params: { fail: true, note }, owner });
      await until('the first attempt to fail', async () => ((await h.latchkey.tasks.get(bad.id)).runs.length === 1 ? true : undefined));
      h.clock.advance(60_000);
      await until('the task to fail', async () => ((await h.latchkey.tasks.get(bad.id)).status === 'failed' ? true : undefined));

      const sent = await until('five messages', async () => (receiver.received.length >= 5 ? receiver.received : undefined));
      const bodies = (path: string, secret: string) => sent.filter((m) => m.path === path).map((m) => verified(secret, m));
      const toTasks = bodies('/tasks', tasksEndpoint.secret);
      const okSlot = (await h.latchkey.tasks.get(ok.id)).runs[0]?.slot;
      const badSlot = (await h.latchkey.tasks.get(bad.id)).runs[0]?.slot;
      assert.deepEqual(
        toTasks.map((b) => b.type),
        ['task.succeeded', 'task.failed', 'task.failed'],
      );
      assert.deepEqual({ ...toTasks[0]?.data, durationMs: 0 }, {
        taskId: ok.id,
        taskType: 'report.build',
        slot: okSlot,
        attempt: 1,
        userId: t.adminId,
        outcome: 'succeeded',
        willRetry: false,
        errorCode: null,
        errorMessage: null,
        durationMs: 0,
        result: { rows: 3 },
      });
      assert.deepEqual(
        toTasks.slice(1).map((b) => ({ ...b.data, durationMs: 0 })),
        [1, 2].map((attempt) => ({
          taskId: bad.id,
          taskType: 'report.build',
          slot: badSlot,
          attempt,
          userId: t.adminId,
          outcome: 'failed',
          willRetry: attempt === 1,
          errorCode: 'provider_unavailable',
          errorMessage: 'The provider did not answer.',
          durationMs: 0,
          result: null,
        })),
      );
      assert.deepEqual(bodies('/failed', failedOnly.secret).map((b) => b.data.attempt), [1, 2]);
      assert.equal(sent.filter((m) => m.path === '/connections').length, 0);
      assert.deepEqual(await h.latchkey.webhooks.deliveries(t.id, connections.id), []);
      assert.ok(sent.every((m) => !m.body.includes(note)), 'no params in any message');
    });

    it("sends nothing for Latchkey's own tasks, which have no owner", async () => {
      const own = (await h.latchkey.tasks.list({ limit: 500 })).tasks.filter((task) => task.key?.startsWith('latchkey:'));
      assert.ok(own.length > 0 && own.every((task) => task.owner === null));
      assert.ok(receiver.received.every((m) => !JSON.parse(m.body).data.taskType?.startsWith('latchkey.')));
    });
  });
});
