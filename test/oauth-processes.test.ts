// Refresh exactly once across processes: 4 child processes, each with its own database handle, store
// and token client on one database, ask for an expired token at the same moment (250 callers each).
// The authorization server (oidc-provider with refresh-token rotation) runs in this process and
// counts refreshes; a second refresh with a consumed refresh token would revoke the grant.
//
// This file is also the child: with LATCHKEY_OAUTH_CHILD set it runs one process's side and exits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LatchkeyError, manualClock } from '../src/core/index.js';
import { DataKeys, Keyring } from '../src/crypto/index.js';
import { openDatabase } from '../src/db/index.js';
import { EncryptedObjectStore, ObjectTypeRegistry } from '../src/objects/index.js';
import { CONNECTION_TYPE, connectionId, createConnectionStore, createTokenClient, type ResolvedClient } from '../src/oauth/index.js';

interface ChildConfig {
  url: string | undefined;
  dataDir: string;
  masterKey: string;
  tenantId: string;
  connectorId: string;
  resolved: ResolvedClient;
  callers: number;
}

interface ChildReport {
  tokens: string[];
  errors: string[];
}

const PROCESSES = 4;
const CALLERS = 250;

/** One process: its own handle, store and token client; ready, then on "go" 250 concurrent calls. */
async function runChild(config: ChildConfig): Promise<void> {
  const handle = openDatabase({ url: config.url, dataDir: config.dataDir });
  const keyring = new Keyring(Buffer.from(config.masterKey, 'base64'));
  const registry = new ObjectTypeRegistry();
  registry.register(CONNECTION_TYPE);
  const store = new EncryptedObjectStore({ db: handle.db, registry, dataKeys: new DataKeys({ db: handle.db, keyring }) });
  const tokens = createTokenClient({ store, handle, keyring, resolveClient: async () => config.resolved });
  await handle.ping();
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  process.stdout.write('ready\n');
  await go;
  lines.close();
  const settled = await Promise.allSettled(Array.from({ length: config.callers }, () => tokens.getAccessToken(config.tenantId, config.connectorId)));
  const report: ChildReport = { tokens: [], errors: [] };
  for (const result of settled) {
    if (result.status === 'fulfilled') report.tokens.push(result.value.accessToken);
    else report.errors.push(result.reason instanceof LatchkeyError ? result.reason.code : String(result.reason));
  }
  report.tokens = [...new Set(report.tokens)];
  await handle.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

interface Child {
  ready: Promise<void>;
  go(): void;
  report: Promise<ChildReport>;
}

function startChild(config: ChildConfig): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, LATCHKEY_OAUTH_CHILD: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const timer = setTimeout(() => child.kill(), 60_000);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const report = new Promise<ChildReport>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line.startsWith('{')) resolve(JSON.parse(line) as ChildReport);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
  // A child that dies before "ready" fails the test instead of hanging it.
  const readyOrExit = Promise.race([ready, report.then(() => undefined)]);
  return { ready: readyOrExit, go: () => child.stdin.end('go\n'), report };
}

const childConfig = process.env['LATCHKEY_OAUTH_CHILD'];
if (childConfig !== undefined) {
  await runChild(JSON.parse(childConfig) as ChildConfig);
} else {
  const { after, before, it } = await import('node:test');
  const { eachDialect } = await import('./support/databases.js');
  const { createStoreFixture } = await import('./support/store.js');
  const { startOidcProvider } = await import('./support/oidc-provider.js');
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
        const client = op.clients.basic;
        const resolved: ResolvedClient = {
          connectorId,
          tokenMode: 'shared',
          authType: 'oauth_authorization_code',
          tokenUrl: op.tokenUrl,
          revocationUrl: op.revocationUrl,
          issuer: op.issuer,
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          clientAuthentication: client.authMethod,
          scopes: [],
          scopeSeparator: ' ',
          tokenParams: {},
          allowInsecureRequests: true,
        };
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
        const parent = createTokenClient({ store: f.store, handle: f.handle, keyring: f.keyring, clock, resolveClient: async () => resolved });
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
}
