// Refresh exactly once across processes: 4 child processes, each with its own database handle, store
// and token client on one database, ask for an expired token at the same moment (250 callers each).
// The authorization server (oidc-provider with refresh-token rotation) runs in this process and
// counts refreshes; a second refresh with a consumed refresh token would revoke the grant.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { manualClock } from '../src/core/index.js';
import { CONNECTION_TYPE, connectionId, createConnectionStore, createTokenClient } from '../src/oauth/index.js';
import { createOutbound } from '../src/outbound/index.js';
import { eachDialect } from './support/databases.js';
import { startOidcProvider } from './support/oidc-provider.js';
import { createStoreFixture } from './support/store.js';
import { resolvedClientFor, startChild, type ChildConfig } from './support/token-children.js';

const PROCESSES = 4;
const CALLERS = 250;

type TestProvider = Awaited<ReturnType<typeof startOidcProvider>>;
let op: TestProvider;
before(async () => {
  op = await startOidcProvider();
});
after(async () => {
  await op.stop();
});

await eachDialect('token refresh across processes', (dialect) => {
  it(`${PROCESSES} processes x ${CALLERS} callers on an expired token: one refresh, one token, the grant intact`, async () => {
    const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
    try {
      const tenantId = `t_${randomBytes(6).toString('hex')}`;
      const connectorId = `conn_${randomBytes(6).toString('hex')}`;
      const resolved = resolvedClientFor(op, connectorId);
      const minted = await op.mintGrant({ accountId: 'alice', scope: 'offline_access api:read' });
      await createConnectionStore({ store: f.store }).save(tenantId, connectorId, null, {
        accessToken: minted.accessToken,
        refreshToken: minted.refreshToken,
        tokenType: 'bearer',
        expiresAt: new Date(Date.now() - 60_000).toISOString(),
      });
      op.resetCounters();

      const config: ChildConfig = {
        url: f.tdb.url,
        dataDir: f.tdb.dataDir,
        masterKey: f.keyring.primary.key.toString('base64'),
        tenantId,
        connectorId,
        resolved,
        callers: CALLERS,
      };
      const children = Array.from({ length: PROCESSES }, () => startChild(config));
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.go();
      const reports = await Promise.all(children.map((c) => c.report));

      assert.deepEqual(reports.flatMap((r) => r.errors), []);
      const tokens = new Set(reports.flatMap((r) => r.tokens));
      assert.equal(tokens.size, 1, 'every caller in every process got the same token');
      assert.equal(op.counters.refresh, 1, 'exactly one refresh reached the provider');
      assert.equal(op.counters.grantsRevoked, 0, 'no refresh token was presented twice');
      const [token] = tokens;
      assert.notEqual(token, minted.accessToken);
      assert.equal(await op.introspect(token as string), true);

      // The grant still works: the next refresh (from this process) succeeds.
      const clock = manualClock(new Date(Date.now() + 2 * 60 * 60_000));
      const parent = createTokenClient({ store: f.store, clock, outbound: createOutbound({ allowInsecureLoopback: true, egressAllow: ['127.0.0.1/32'] }), resolveClient: async () => resolved });
      const next = await parent.getAccessToken(tenantId, connectorId);
      assert.notEqual(next.accessToken, token);
      assert.equal(op.counters.refresh, 2);
      assert.equal(op.counters.grantsRevoked, 0);
      const view = await createConnectionStore({ store: f.store }).get(tenantId, connectionId(connectorId));
      assert.equal(view.status, 'active');
    } finally {
      await f.dispose();
    }
  });
});
