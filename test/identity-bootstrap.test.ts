// Bootstrap from several real processes at once: exactly one creates the first tenant and admin.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { InvalidationBus } from '../src/db/index.js';
import { createIdentity, type BootstrapResult } from '../src/identity/index.js';
import { createTestDatabase, eachDialect } from './support/databases.js';
import { openMigrated } from './identity-support.js';

const run = promisify(execFile);

await eachDialect('identity: bootstrap across processes', (dialect) => {
  it('exactly one of three processes starting together creates the admin, whose password works', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const handle = await openMigrated(tdb);
      const startAt = String(Date.now() + 4000);
      const outputs = await Promise.all(
        [1, 2, 3].map(() =>
          run(process.execPath, ['--import', 'tsx', 'test/identity-bootstrap-child.ts', tdb.url ?? '', tdb.dataDir, startAt], { timeout: 60_000 }),
        ),
      );
      const results = outputs.map((o) => JSON.parse(o.stdout.trim()) as BootstrapResult);
      const created = results.filter((r) => r.created);
      assert.equal(created.length, 1, JSON.stringify(results.map((r) => r.created)));
      const winner = created[0];
      assert.ok(winner?.created);

      const bus = new InvalidationBus({ handle });
      const identity = createIdentity({ db: handle.db, bus });
      assert.equal((await identity.tenants.list()).length, 1);
      const login = await identity.sessions.login({ tenant: 'default', username: 'admin', password: winner.password, address: '127.0.0.1' });
      assert.equal(login.userId, winner.userId);
    } finally {
      await tdb.dispose();
    }
  });
});
