// Proactive refresh as Latchkey's recurring task (`latchkey:token-refresh`), against a real
// authorization server (oidc-provider with refresh-token rotation: a double refresh revokes the
// grant), on both databases: a token is refreshed before any caller needs it, and a refresh by the
// task at the same time as on-demand refreshes reaches the provider once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DialectName } from '../src/db/index.js';
import { CONNECTION_TYPE, connectionId } from '../src/oauth/index.js';
import { eachDialect, LOOPBACK_EGRESS } from './support/databases.js';
import { createHttpHarness, randomName, type HttpHarness } from './support/http.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

const PUBLIC_URL = 'https://latchkey.test';
const ENV = { LATCHKEY_PUBLIC_URL: PUBLIC_URL, LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS };
/** Access tokens live 10 minutes: refreshed on demand 5 minutes before expiry, by the task 2 minutes earlier. */
const TTL_S = 600;

/** Waits for `check` to hold, polling; fails after a generous ceiling (never a timing assertion). */
async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

await eachDialect('proactive refresh', (dialect: DialectName) => {
  describe('the token-refresh task', () => {
    let h: HttpHarness;
    let op: TestProvider;
    before(async () => {
      op = await startOidcProvider({ accessTokenTtl: TTL_S });
      // Leases far beyond the manual clock's jumps (which would otherwise expire a run under way).
      h = await createHttpHarness(dialect, ENV, { tasks: { pollIntervalMs: 20, leaseMs: 3_600_000 } });
    });
    after(async () => {
      await h?.close();
      await op?.stop();
    });

    it('refreshes a token due soon before any caller asks, and together with on-demand refreshes only once', async () => {
      const t = await h.tenant();
      const connector = await h.call({
        method: 'POST',
        url: '/api/v1/connectors',
        key: t.adminKey,
        body: {
          name: randomName('oidc'),
          provider: 'oidc',
          authType: 'oauth_authorization_code',
          tokenMode: 'shared',
          config: { issuer: op.issuer, clientId: op.clients.basic.clientId, scopes: 'openid offline_access api:read' },
          secrets: { clientSecret: op.clients.basic.clientSecret },
        },
      });
      assert.equal(connector.status, 201, connector.text);
      const connectorId = connector.json.id as string;
      const grant = await op.mintGrant({ accountId: 'alice', expiresIn: TTL_S });
      const issuedAt = h.clock.now();
      await h.latchkey.oauth.connections.save(t.id, connectorId, null, {
        accessToken: grant.accessToken,
        refreshToken: grant.refreshToken,
        tokenType: 'bearer',
        expiresAt: new Date(issuedAt.getTime() + TTL_S * 1000).toISOString(),
        issuedAt: issuedAt.toISOString(),
      });
      op.resetCounters();
      const { tasks } = await h.latchkey.tasks.list({ type: 'latchkey.token-refresh' });
      assert.equal(tasks.length, 1);
      const taskId = tasks[0]?.id ?? '';
      const runsOf = async () => (await h.latchkey.tasks.get(taskId)).runs.length;
      const connection = async () => (await h.latchkey.store.get(CONNECTION_TYPE, t.id, connectionId(connectorId))).attributes;
      const taskRuns = async (runs: number) => until(`run ${runs + 1} of the refresh task`, async () => ((await runsOf()) > runs ? true : undefined));

      // 2 minutes in: not due yet (the task refreshes from 3 minutes in: 5 minutes + 2 before expiry, capped at a quarter of the lifetime).
      h.clock.advance(2 * 60_000);
      await taskRuns(await runsOf());
      assert.equal(op.counters.refresh, 0);
      assert.equal((await connection()).lastRefreshAt, null);

      // 3.5 minutes in: due for the task, not yet for callers (they refresh from 5 minutes in).
      h.clock.advance(90_000);
      const refreshed = await until('the proactive refresh', async () => ((await connection()).lastRefreshAt !== null ? connection() : undefined));
      assert.equal(op.counters.refresh, 1);
      assert.equal(refreshed.status, 'active');
      const fresh = await h.latchkey.oauth.tokens.getAccessToken(t.id, connectorId);
      assert.notEqual(fresh.accessToken, grant.accessToken);
      assert.equal(op.counters.refresh, 1, 'a caller gets the refreshed token without a refresh');

      // 6 minutes later the new token is due for callers and the task alike: slowed token requests
      // make the task and five callers meet at the connection's lock. The provider sees one refresh
      // (a second would present a consumed refresh token and revoke the grant).
      op.setSlow(300);
      const before = await runsOf();
      h.clock.advance(6 * 60_000);
      const answers = await Promise.all(Array.from({ length: 5 }, () => h.latchkey.oauth.tokens.getAccessToken(t.id, connectorId)));
      await taskRuns(before);
      op.setSlow(0);
      assert.equal(op.counters.refresh, 2);
      assert.equal(op.counters.grantsRevoked, 0);
      assert.equal(new Set(answers.map((a) => a.accessToken)).size, 1);
      assert.notEqual(answers[0]?.accessToken, fresh.accessToken);
      const view = await h.latchkey.tasks.get(taskId);
      assert.ok(view.runs.every((run) => run.outcome === 'succeeded'), JSON.stringify(view.runs));
      assert.equal((await connection()).status, 'active');
    });
  });
});
