// `latchkey serve` against a plain-http authorization server on 127.0.0.1 (oidc-provider): with
// LATCHKEY_ALLOW_INSECURE_LOOPBACK=1 a connector on it is created and hands out a token (discovery
// and the client credentials grant over http); a server without the opt-in refuses to create one
// (400 naming the field) and answers a token request for an existing one with the permanent
// insecure_endpoint, never 503 "retry later".
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { runCli, startServer, type ServerProcess } from './support/cli.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS } from './support/databases.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function request(server: ServerProcess, method: string, path: string, key: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `ApiKey ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

let op: TestProvider;
before(async () => {
  op = await startOidcProvider();
});
after(async () => {
  await op.stop();
});

await eachDialect('serve with a plain-http OAuth server on loopback', (dialect) => {
  it('a plain-http OAuth server on loopback works with LATCHKEY_ALLOW_INSECURE_LOOPBACK=1, and is refused plainly without it', async () => {
    const tdb = await createTestDatabase(dialect);
    const env = latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'info' });
    const servers: ServerProcess[] = [];
    try {
      const insecure = await startServer([], { env: { ...env, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS } });
      servers.push(insecure);
      assert.match(insecure.output(), /UNSAFE: allowInsecureLoopback is on/, 'a warning at start');
      const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'ops', '--json'], { env });
      assert.equal(minted.code, 0, minted.stderr);
      const { key } = JSON.parse(minted.stdout) as { key: string };

      const client = op.clients.basic;
      const connector = {
        name: 'Local IdP',
        provider: 'oidc',
        authType: 'oauth_client_credentials',
        config: { issuer: op.issuer, clientId: client.clientId, scopes: ['api:read'] },
        secrets: { clientSecret: client.clientSecret },
      };
      const created = await request(insecure, 'POST', '/api/v1/connectors', key, connector);
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const token = await request(insecure, 'POST', `/api/v1/connectors/${created.json.id}/token`, key);
      assert.equal(token.status, 200, JSON.stringify(token.json));
      assert.equal(await op.introspect(token.json.accessToken), true, 'a real token from the provider');
      assert.equal(await insecure.stop(), 0);
      servers.pop();

      // The egress policy refuses the provider on 127.0.0.1 unless LATCHKEY_EGRESS_ALLOW names it.
      const unallowed = await startServer([], { env: { ...env, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1' } });
      servers.push(unallowed);
      const other = await request(unallowed, 'POST', '/api/v1/connectors', key, { ...connector, name: 'Local IdP, not allowed' });
      assert.equal(other.status, 201, JSON.stringify(other.json));
      const blocked = await request(unallowed, 'POST', `/api/v1/connectors/${other.json.id}/token`, key);
      assert.equal(blocked.status, 403, JSON.stringify(blocked.json));
      assert.equal(blocked.json.error.code, 'egress_refused');
      assert.match(blocked.json.error.message, /^The egress policy refuses requests to 127\.0\.0\.1: it is a loopback address \(allow it with --egress-allow\)\.$/);
      assert.equal(await unallowed.stop(), 0);
      servers.pop();

      const strict = await startServer([], { env });
      servers.push(strict);
      assert.doesNotMatch(strict.output(), /UNSAFE/);
      const refused = await request(strict, 'POST', '/api/v1/connectors', key, connector);
      assert.equal(refused.status, 400);
      assert.equal(refused.json.error.code, 'validation_failed');
      assert.match(refused.json.error.message, /"config\.issuer" uses plain http.*--allow-insecure-loopback/);
      const never = await request(strict, 'POST', `/api/v1/connectors/${created.json.id}/token`, key);
      assert.equal(never.status, 409, JSON.stringify(never.json));
      assert.equal(never.json.error.code, 'insecure_endpoint');
      assert.doesNotMatch(never.json.error.message, /retry later/);
      assert.equal(await strict.stop(), 0);
      servers.pop();
      assert.ok(!((await insecure.settled()) + (await unallowed.settled()) + strict.output()).includes(client.clientSecret), 'no secret in the output');
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await tdb.dispose();
    }
  });
});
