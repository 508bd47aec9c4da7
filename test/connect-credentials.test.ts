// End users give their own credentials on the hosted connect page, as an application and its end
// users meet it: a real `latchkey serve` process with settings from the environment, a small upstream
// API on 127.0.0.1 that records what it is sent, and one cookie jar per end user's browser. Each end
// user submits an API key and a basic credential for per-user connectors of the generic `http`
// provider; the application then calls the upstream through the proxy as each end user, and the
// upstream sees that end user's own credential. A session opens only its connectors, a form works only
// in the browser that opened the page, bad input stores nothing, and no submitted secret comes back
// in a page, an API answer or the log. A connector that needs an end user's subdomain asks for it
// before the OAuth flow starts, and builds that end user's authorization URL from it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { Browser, pageForms, unescapeHtml, type PageForm } from './support/browser.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/cli.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS } from './support/databases.js';

const secret = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

let upstream: Server;
let upstreamUrl: string;
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
let port: number;
let base: string;

before(async () => {
  upstream = createServer((request, response) => {
    seen.push({ url: request.url ?? '', headers: request.headers });
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  upstream.listen(0, '127.0.0.1');
  await new Promise((resolve) => upstream.once('listening', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
});
after(async () => {
  await new Promise((resolve) => upstream.close(resolve));
});

/** Every body the application received, to check that no submitted secret is in any. */
const apiBodies: string[] = [];

async function api(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const h: Record<string, string> = { authorization: `ApiKey ${key}`, ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  apiBodies.push(text);
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Opens the page in `browser` and returns the form whose button is labelled `Connect <name>`. */
async function formOf(browser: Browser, pageUrl: string, name: string): Promise<PageForm> {
  const page = await browser.get(pageUrl);
  const html = await browser.text(page);
  assert.equal(page.status, 200, html);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const form = pageForms(html).get(`Connect ${name}`) ?? pageForms(html).get(`Reconnect ${name}`);
  assert.ok(form, `the page offers ${name}: ${html}`);
  return form;
}

/** Fills and posts a form: its hidden values plus `values`. `html` is the answer's text, unescaped. */
async function submit(browser: Browser, form: PageForm, values: Record<string, string>): Promise<{ res: Response; html: string }> {
  const res = await browser.post(`${base}${form.action}`, { ...form.hidden, ...values });
  return { res, html: unescapeHtml(await browser.text(res)) };
}

await eachDialect('end users give their own credentials on the connect page', (dialect) => {
  it('api_key and basic credentials per end user reach the upstream through the proxy; refusals store nothing; no secret comes back', async () => {
    const tdb = await createTestDatabase(dialect);
    const env = latchkeyEnv(tdb, { LATCHKEY_PUBLIC_URL: base, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
    let server: ServerProcess | undefined;
    const submitted: string[] = [];
    try {
      server = await startServer(['--port', String(port)], { env });
      const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
      assert.equal(minted.code, 0, minted.stderr);
      const { key } = JSON.parse(minted.stdout) as { key: string };

      const create = async (body: Record<string, unknown>) => {
        const created = await api('POST', '/api/v1/connectors', key, body);
        assert.equal(created.status, 201, created.text);
        assert.deepEqual(created.json.secrets, {}, 'a per-user credential connector holds no secret of its own');
        return created.json.id as string;
      };
      const apiKeyConnector = await create({ name: 'Keyed API', provider: 'http', authType: 'api_key', tokenMode: 'per_user', config: { apiBaseUrl: `${upstreamUrl}/api`, name: 'X-Api-Key' } });
      const basicConnector = await create({ name: 'Basic API', provider: 'http', authType: 'basic', tokenMode: 'per_user', config: { apiBaseUrl: `${upstreamUrl}/api` } });

      const session = async (endUserId: string, body: Record<string, unknown> = {}) => {
        const made = await api('POST', '/api/v1/connect-sessions', key, { endUser: { id: endUserId }, allowedOrigins: ['https://app.example.com'], ...body });
        assert.equal(made.status, 201, made.text);
        return made.json as { token: string; url: string };
      };
      const alice = await session('alice', { allowedConnectors: [apiKeyConnector, basicConnector] });
      const bob = await session('bob', { allowedConnectors: [apiKeyConnector, basicConnector], returnTo: 'https://app.example.com/done' });

      // Alice gives an API key and a user name and password; the page says so and tells the opener.
      const aliceBrowser = new Browser();
      const aliceKey = secret('alice-key');
      submitted.push(aliceKey);
      const keyForm = await formOf(aliceBrowser, alice.url, 'Keyed API');
      assert.deepEqual(keyForm.inputs, ['credential.key']);
      assert.ok(keyForm.hidden['form_token'], 'the credential form carries a form token');
      const formCookie = aliceBrowser.cookie('latchkey_connect_form');
      assert.ok(formCookie, 'the page set its form cookie');
      const keyDone = await submit(aliceBrowser, keyForm, { 'credential.key': aliceKey });
      assert.equal(keyDone.res.status, 200, keyDone.html);
      assert.match(keyDone.html, /Keyed API account is connected/);
      assert.match(keyDone.html, /data-origins="\["https:\/\/app.example.com"\]"/, 'the outcome is posted to the allowed origins only');
      const alicePassword = secret('alice-pw');
      submitted.push(alicePassword);
      const basicForm = await formOf(aliceBrowser, alice.url, 'Basic API');
      assert.deepEqual(basicForm.inputs, ['credential.username', 'credential.password']);
      const basicDone = await submit(aliceBrowser, basicForm, { 'credential.username': 'alice@example.com', 'credential.password': alicePassword });
      assert.equal(basicDone.res.status, 200, basicDone.html);
      // The page now says she is connected, and offers to reconnect.
      const again = await aliceBrowser.get(alice.url);
      assert.match(await aliceBrowser.text(again), /aria-label="Reconnect Keyed API"/);

      // Bob gives his own API key; his session sends him back to the application.
      const bobBrowser = new Browser();
      const bobKey = secret('bob-key');
      submitted.push(bobKey);
      const bobDone = await submit(bobBrowser, await formOf(bobBrowser, bob.url, 'Keyed API'), { 'credential.key': bobKey });
      assert.equal(bobDone.res.status, 303, bobDone.html);
      const back = new URL(bobDone.res.headers.get('location') as string);
      assert.equal(`${back.origin}${back.pathname}`, 'https://app.example.com/done');
      assert.equal(back.searchParams.get('status'), 'connected');
      assert.equal(back.searchParams.get('connector'), apiKeyConnector);

      // The application calls the upstream as each end user: each one's own credential arrives.
      const proxied = async (connectorId: string, endUser: string | undefined) => {
        const before = seen.length;
        const res = await api('GET', `/api/v1/connectors/${connectorId}/proxy/items`, key, undefined, endUser ? { 'latchkey-end-user': endUser } : {});
        return { res, got: seen.length > before ? seen.at(-1) : undefined };
      };
      const asAlice = await proxied(apiKeyConnector, 'alice');
      assert.equal(asAlice.res.status, 200, asAlice.res.text);
      assert.equal(asAlice.got?.headers['x-api-key'], aliceKey);
      assert.equal(asAlice.got?.headers['authorization'], undefined, 'the application\'s Latchkey key never reaches the upstream');
      const asBob = await proxied(apiKeyConnector, 'bob');
      assert.equal(asBob.got?.headers['x-api-key'], bobKey, 'bob\'s credential is his own');
      const basicAlice = await proxied(basicConnector, 'alice');
      assert.equal(basicAlice.got?.headers['authorization'], `Basic ${Buffer.from(`alice@example.com:${alicePassword}`).toString('base64')}`);
      const basicBob = await proxied(basicConnector, 'bob');
      assert.equal(basicBob.res.status, 404, basicBob.res.text);
      assert.equal(basicBob.res.json.error.code, 'not_connected');
      assert.equal(basicBob.got, undefined, 'nothing is sent for an end user who never connected');
      const nobody = await proxied(apiKeyConnector, undefined);
      assert.equal(nobody.res.json.error.code, 'not_connected', 'without an end user the call is about the calling user, who never connected');
      assert.equal(nobody.got, undefined);

      // The application may take the credential itself (that answer is the one place it appears).
      const handed = await fetch(`${base}/api/v1/connectors/${apiKeyConnector}/token`, { method: 'POST', headers: { authorization: `ApiKey ${key}`, 'latchkey-end-user': 'alice' } });
      assert.equal(handed.status, 200);
      assert.deepEqual(await handed.json(), { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: aliceKey });
      const audit = await api('GET', '/api/v1/audit?limit=100', key);
      const actions = (audit.json.items as { action: string; actor: string; details: Record<string, unknown> | null }[]).map((e) => `${e.action} ${e.actor} ${String(e.details?.['endUserId'])}`);
      assert.ok(actions.includes('connection.credential_saved end_user:alice alice'), actions.join('\n'));
      assert.ok(actions.some((a) => a.startsWith('connector.credential_issued api_key:') && a.endsWith(' alice')), actions.join('\n'));
      // What an end user did on the connect page is found by that actor.
      const byAlice = await api('GET', `/api/v1/audit?actor=${encodeURIComponent('end_user:alice')}`, key);
      assert.equal(byAlice.status, 200, JSON.stringify(byAlice.json));
      const aliceActions = (byAlice.json.items as { action: string; actor: string }[]).map((e) => `${e.action} ${e.actor}`);
      assert.ok(aliceActions.length > 0 && aliceActions.every((a) => a.endsWith(' end_user:alice')), aliceActions.join('\n'));
      assert.ok(aliceActions.includes('connection.credential_saved end_user:alice'));
      const controlled = await api('GET', `/api/v1/audit?actor=${encodeURIComponent('end_user:a\u0001b')}`, key);
      assert.equal(controlled.status, 400);

      // A session opens only its own connectors: carol's allows the API key connector only.
      const carol = await session('carol', { allowedConnectors: [apiKeyConnector] });
      const carolBrowser = new Browser();
      const carolForm = await formOf(carolBrowser, carol.url, 'Keyed API');
      const carolSecret = secret('carol');
      submitted.push(carolSecret);
      const outside = await submit(carolBrowser, { ...carolForm, hidden: { ...carolForm.hidden, connector: basicConnector } }, {
        'credential.username': 'carol',
        'credential.password': carolSecret,
      });
      assert.equal(outside.res.status, 403, outside.html);
      assert.match(outside.html, /does not allow that connector/);
      for (const id of ['connector_nope', '']) {
        const refused = await submit(carolBrowser, { ...carolForm, hidden: { ...carolForm.hidden, connector: id } }, { 'credential.key': carolSecret });
        assert.equal(refused.res.status, 403, refused.html);
      }

      // A form works only in the browser that opened the page: not cross-site, not forwarded.
      const noCookie = await fetch(`${base}/connect/credentials`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...carolForm.hidden, 'credential.key': carolSecret }).toString(),
      });
      const noCookieHtml = await noCookie.text();
      carolBrowser.bodies.push(noCookieHtml);
      assert.equal(noCookie.status, 403, noCookieHtml);
      assert.match(noCookieHtml, /not opened in this browser/);
      const mallory = new Browser();
      await formOf(mallory, carol.url, 'Keyed API'); // Mallory's browser has a form cookie of its own.
      const forwarded = await submit(mallory, carolForm, { 'credential.key': carolSecret });
      assert.equal(forwarded.res.status, 403, forwarded.html);
      const noToken = await submit(carolBrowser, { ...carolForm, hidden: { ...carolForm.hidden, form_token: '' } }, { 'credential.key': carolSecret });
      assert.equal(noToken.res.status, 403, noToken.html);

      // Bad input is refused in words, names the field, never the value, and stores nothing.
      const nul = secret('nul');
      const huge = secret('huge').padEnd(9000, 'x');
      // A NUL byte anywhere in a request is refused at the edge, before any route runs.
      const withNul = await submit(carolBrowser, await formOf(carolBrowser, carol.url, 'Keyed API'), { 'credential.key': `${nul}\u0000tail` });
      assert.equal(withNul.res.status, 400, withNul.html);
      assert.match(withNul.html, /"credential\.key" must not contain a NUL character/);
      assert.match(withNul.html, /action="\/connect\/credentials"/, 'the form is there again to correct it');
      assert.ok(!withNul.html.includes(nul), 'no submitted value is echoed');
      const bad: [Record<string, string>, RegExp][] = [
        [{ 'credential.key': `${nul}\r\nx-injected: 1` }, /"credential\.key" must not contain control characters/],
        [{ 'credential.key': huge }, /"credential\.key" must be at most 8192 characters/],
        [{ 'credential.key': '' }, /"credential\.key" must not be empty/],
        [{}, /"credential\.key" is required/],
        [{ 'credential.token': nul }, /"credential\.token" is not part of a api_key credential/],
        [{ 'credential.key': nul, 'config.apiBaseUrl': 'https://evil.example' }, /"config\.apiBaseUrl" is not asked of end users/],
        [{ 'credential.key': nul, extra: nul }, /"extra" is not part of a connection/],
      ];
      submitted.push(nul, huge);
      for (const [values, message] of bad) {
        const refused = await submit(carolBrowser, await formOf(carolBrowser, carol.url, 'Keyed API'), values);
        assert.equal(refused.res.status, 400, refused.html);
        assert.match(refused.html, message);
        assert.match(refused.html, /role="alert">Keyed API: The connection is invalid/);
        assert.match(refused.html, /action="\/connect\/credentials"/, 'the form is there again to correct it');
        assert.ok(!refused.html.includes('evil.example'), 'no submitted value is echoed');
      }
      const overLimit = await submit(carolBrowser, await formOf(carolBrowser, carol.url, 'Keyed API'), { 'credential.key': huge.repeat(8) });
      assert.equal(overLimit.res.status, 413, overLimit.html);
      assert.match(overLimit.html, /too large; nothing was saved/);
      const badBasic = await submit(aliceBrowser, await formOf(aliceBrowser, alice.url, 'Basic API'), { 'credential.username': 'al:ice', 'credential.password': nul });
      assert.equal(badBasic.res.status, 400, badBasic.html);
      assert.match(badBasic.html, /"credential\.username" must not contain ":"/);
      // Through the API, a value of the wrong type is refused the same way.
      const wrongType = await api('PUT', `/api/v1/connectors/${apiKeyConnector}/connection`, key, { credential: { key: 12345 } }, { 'latchkey-end-user': 'carol' });
      assert.equal(wrongType.status, 400, wrongType.text);
      assert.equal(wrongType.json.error.code, 'validation_failed');
      // A key beyond Latin-1 cannot go into a header: refused when given, not on every proxied call.
      const notLatin1 = await api('PUT', `/api/v1/connectors/${apiKeyConnector}/connection`, key, { credential: { key: `${secret('carol')}\u2603` } }, { 'latchkey-end-user': 'carol' });
      assert.equal(notLatin1.status, 400, notLatin1.text);
      assert.match(notLatin1.json.error.message, /"credential\.key" must not contain characters beyond Latin-1/);
      assert.deepEqual((await api('GET', '/api/v1/connections?endUserId=carol', key)).json.items, [], 'nothing was stored for carol');
      const aliceStill = await proxied(basicConnector, 'alice');
      assert.equal(aliceStill.got?.headers['authorization'], `Basic ${Buffer.from(`alice@example.com:${alicePassword}`).toString('base64')}`, 'a refused resubmission leaves the stored credential');

      // The application stores an end user's credential through the API too: the same service.
      const daveKey = secret('dave');
      submitted.push(daveKey);
      const put = await api('PUT', `/api/v1/connectors/${apiKeyConnector}/connection`, key, { credential: { key: daveKey } }, { 'latchkey-end-user': 'dave' });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.json.id, `per-user:${apiKeyConnector}:end-user:dave`);
      assert.equal((await proxied(apiKeyConnector, 'dave')).got?.headers['x-api-key'], daveKey);

      // Lists show who has connected, never a credential.
      const listed = await api('GET', `/api/v1/connectors/${apiKeyConnector}/connections`, key);
      assert.deepEqual(listed.json.items.map((c: { endUserId: string }) => c.endUserId).sort(), ['alice', 'bob', 'dave']);

      // Disconnecting an end user's own credential deletes it (nothing to revoke at a provider); the proxy then refuses.
      const gone = await api('DELETE', `/api/v1/connectors/${apiKeyConnector}/connection`, key, undefined, { 'latchkey-end-user': 'dave' });
      assert.equal(gone.status, 200, gone.text);
      assert.equal(gone.json.revoked, false);
      const afterDelete = await api('GET', `/api/v1/connectors/${apiKeyConnector}/connections`, key);
      assert.deepEqual(afterDelete.json.items.map((c: { endUserId: string }) => c.endUserId).sort(), ['alice', 'bob']);
      const twice = await api('DELETE', `/api/v1/connectors/${apiKeyConnector}/connection`, key, undefined, { 'latchkey-end-user': 'dave' });
      assert.equal(twice.status, 404, twice.text);
      assert.equal(twice.json.error.code, 'not_connected');

      assert.equal(await server.stop(), 0);
      const output = server.output();
      server = undefined;
      const bodies = [...apiBodies, ...aliceBrowser.bodies, ...bobBrowser.bodies, ...carolBrowser.bodies, ...mallory.bodies];
      for (const value of submitted) {
        const probe = value.slice(0, 40);
        assert.ok(!output.includes(probe), 'no submitted secret in the log');
        for (const body of bodies) assert.ok(!body.includes(probe), `no submitted secret in a response body: ${body.slice(0, 200)}`);
      }
      assert.ok(!output.includes(alice.token) && !output.includes(carol.token), 'no session token in the log');
    } finally {
      await server?.stop();
      await tdb.dispose();
    }
  });

  it('a connector that needs the end user\'s subdomain asks for it, checks it, and builds that end user\'s authorization URL from it', async () => {
    const tdb = await createTestDatabase(dialect);
    const env = latchkeyEnv(tdb, { LATCHKEY_PUBLIC_URL: base, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
    let server: ServerProcess | undefined;
    try {
      server = await startServer(['--port', String(port)], { env });
      const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
      const { key } = JSON.parse(minted.stdout) as { key: string };
      const clientSecret = secret('client');
      const created = await api('POST', '/api/v1/connectors', key, {
        name: 'Zendesk',
        provider: 'zendesk',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: 'client-1' },
        secrets: { clientSecret },
      });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(created.json.endUserFields, ['subdomain']);
      const made = await api('POST', '/api/v1/connect-sessions', key, { endUser: { id: 'erin' }, allowedConnectors: [created.json.id] });
      const browser = new Browser();
      const form = await formOf(browser, made.json.url, 'Zendesk');
      assert.equal(form.action, '/connect/start');
      assert.deepEqual(form.inputs, ['config.subdomain']);

      for (const [subdomain, message] of [
        ['evil.example.com/x', /"config\.subdomain" is not in the form it takes \(The account subdomain: "acme" for acme\.zendesk\.com\)/],
        ['ac\u0000me', /"config\.subdomain" must not contain a NUL character/],
        ['ac\tme', /"config\.subdomain" must not contain control characters/],
        ['', /"config\.subdomain" must not be empty/],
      ] as const) {
        const refused = await submit(browser, form, { 'config.subdomain': subdomain });
        assert.equal(refused.res.status, 400, refused.html);
        assert.match(refused.html, message);
        assert.ok(!refused.html.includes('evil.example'), 'the value is not echoed');
        assert.equal(browser.cookie('latchkey_connect'), undefined, 'no flow was started');
      }
      const missing = await browser.post(`${base}/connect/start`, form.hidden);
      assert.equal(missing.status, 400);
      assert.match(unescapeHtml(await browser.text(missing)), /"config\.subdomain" is required/);

      const started = await submit(browser, form, { 'config.subdomain': 'acme' });
      assert.equal(started.res.status, 303, started.html);
      const to = new URL(started.res.headers.get('location') as string);
      assert.equal(`${to.origin}${to.pathname}`, 'https://acme.zendesk.com/oauth/authorizations/new', 'the end user\'s own subdomain');
      assert.equal(to.searchParams.get('client_id'), 'client-1');
      assert.equal(to.searchParams.get('redirect_uri'), `${base}/api/v1/oauth/callback`);
      assert.ok(browser.cookie('latchkey_connect'), 'the flow is bound to this browser');
      assert.ok(!(await server.settled()).includes(clientSecret));
    } finally {
      await server?.stop();
      await tdb.dispose();
    }
  });
});
