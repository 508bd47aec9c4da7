// Rules of the connector service that hold through the library entry, exactly as over HTTP:
// createLatchkey → latchkey.connectors, on both databases, against a real authorization server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { loadSettings } from '../src/core/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS } from './support/databases.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

let op: TestProvider;
before(async () => {
  op = await startOidcProvider();
});
after(async () => {
  await op.stop();
});

await eachDialect('connectors through the library', (dialect) => {
  it('latchkey.connectors.delete() disconnects the connector\'s connections: tokens revoked at the provider and deleted', async () => {
    const tdb = await createTestDatabase(dialect);
    const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS, LATCHKEY_LOG_LEVEL: 'silent' }) });
    const latchkey = await createLatchkey({ settings, http: false, bootstrap: false });
    try {
      const tenant = await latchkey.identity.tenants.create({ name: `t-${randomBytes(4).toString('hex')}` });
      const client = op.clients.basic;
      const connector = await latchkey.connectors.create(SYSTEM_ACTOR, tenant.id, {
        name: 'Local',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: client.clientId, authorizationUrl: op.authorizationUrl, tokenUrl: op.tokenUrl, revocationUrl: op.revocationUrl },
        secrets: { clientSecret: client.clientSecret },
      });
      const grants = [];
      for (const user of ['alice', 'bob']) {
        const minted = await op.mintGrant({ accountId: user, scope: 'offline_access api:read' });
        grants.push(minted);
        await latchkey.oauth.connections.save(tenant.id, connector.id, user, { accessToken: minted.accessToken, refreshToken: minted.refreshToken, tokenType: 'bearer' });
      }
      op.resetCounters();

      await latchkey.connectors.delete(SYSTEM_ACTOR, tenant.id, connector.id);
      assert.deepEqual((await latchkey.oauth.connections.list(tenant.id)).items, [], 'no connection is left');
      assert.equal(op.counters.revocation, 2);
      for (const minted of grants) {
        assert.equal(await op.introspect(minted.refreshToken), false, 'the refresh token was revoked');
        assert.equal(await op.introspect(minted.accessToken), false, 'and its access token with it');
      }
      const stored = await latchkey.database.db.selectFrom('objects').select('id').where('tenant_id', '=', tenant.id).where('type', '=', 'connection').execute();
      assert.deepEqual(stored, [], 'no token stays in the database');
    } finally {
      await latchkey.close();
      await tdb.dispose();
    }
  });
});
