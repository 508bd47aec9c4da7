// The console's other pages in a real browser (Debian's chromium through playwright-core) against a
// real `latchkey serve` process, on SQLite and on PostgreSQL: switching tenant, the end users'
// connections with filters and pages, users, groups and roles, webhooks with a real receiver
// (secret shown once, deliveries, redeliver, roll, delete), the audit log with filters, and the
// settings with doctor's checks. Every test fails on any console error, uncaught exception, failed
// request or error answer on Latchkey's pages, except the refusals a test provokes on purpose.
// Screenshots of each page go to test-results/screenshots/.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, it } from 'node:test';
import type { Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { CHROMIUM, launchChromium, type PageGlobals, type TestBrowser } from './support/chromium.js';
import { startServer, type ServerProcess } from './support/cli.js';
import { buildConsole, focused, logIn, tabTo, unlabelled } from './support/console.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS, type TestDatabase } from './support/databases.js';

/** A webhook receiver on loopback: answers `status`, keeps what it was sent. */
interface Receiver {
  url: string;
  status: number;
  received: Array<{ headers: IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const receiver = { status: 503, received } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(receiver.status, { 'content-type': 'text/plain' }).end(receiver.status < 300 ? 'thanks' : 'not now');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return receiver;
}

/** Logs in through the API and makes an API key for the bootstrap admin (all permissions, system tenant). */
async function adminKey(url: string, password: string): Promise<string> {
  const login = await fetch(`${url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'default', username: 'admin', password }) });
  assert.equal(login.status, 201);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = decodeURIComponent(/latchkey_csrf=([^;]+)/.exec(cookie)?.[1] ?? '');
  const res = await fetch(`${url}/api/v1/api-keys`, { method: 'POST', headers: { cookie, 'x-latchkey-csrf': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'seed' }) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

/** Takes what went wrong on the page and checks it is exactly the refusals provoked on purpose. */
function expectOnly(browser: TestBrowser, ...expected: RegExp[]): void {
  const problems = browser.takeProblems();
  for (const problem of problems) assert.ok(expected.some((e) => e.test(problem)), `unexpected: ${problem}`);
  for (const e of expected) assert.ok(problems.some((p) => e.test(p)), `expected a problem matching ${e}; got ${problems.join('\n')}`);
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
  await buildConsole();
});

await eachDialect('console pages in chromium', (dialect) => {
    let tdb: TestDatabase;
    let env: Record<string, string>;
    let server: ServerProcess;
    let browser: TestBrowser;
    let receiver: Receiver;
    let page: Page;
    let password: string;
    let key: string;
    let connectorId: string;
    const carolPassword = `pw-${randomBytes(12).toString('hex')}`;
    const shot = (name: string) => browser.screenshot(page, dialect === 'sqlite' ? name : `${name}-${dialect}`);

    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: { authorization: `ApiKey ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
      return text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
    };
    /** Stores an end user's own token for the per-user connector: their connection. */
    const connectEndUser = (endUserId: string) => call('PUT', `/connectors/${connectorId}/connection`, { credential: { token: randomBytes(16).toString('hex') } }, { 'latchkey-end-user': endUserId });
    const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
    /** Every page of the navigation; each page's heading is its link's name. */
    const PAGES = ['Overview', 'Connectors', 'Connections', 'API keys', 'Tasks', 'Users', 'Groups', 'Roles', 'Webhooks', 'Audit log', 'Settings'];
    const open = async (link: string) => {
      await nav(link);
      await page.getByRole('heading', { name: link, level: 1 }).waitFor();
    };

    before(async () => {
      tdb = await createTestDatabase(dialect);
      env = latchkeyEnv(tdb, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
      server = await startServer([], { env });
      password = readFileSync(join(tdb.dataDir, 'initial-admin-password'), 'utf8').trim();
      key = await adminKey(server.url, password);
      const connector = await call('POST', '/connectors', { name: 'Billing API', provider: 'http', authType: 'bearer', tokenMode: 'per_user', config: { apiBaseUrl: 'https://billing.internal.example/v1' } });
      connectorId = String(connector?.id);
      receiver = await startReceiver();
      browser = await launchChromium(server.url);
      page = await browser.context.newPage();
      await logIn(page, server.url, { password });
    });
    after(async () => {
      await browser?.close();
      await receiver?.close();
      await server?.stop();
      await tdb?.dispose();
    });
    afterEach(() => {
      assert.deepEqual(browser.takeProblems(), [], 'no console error or failed request on Latchkey\'s pages');
    });

    it('switches tenant: logs out, keeps the user name and logs in to the other tenant', async () => {
      const other = await call('POST', '/tenants', { name: `acme-${dialect}`, initialAdmin: { username: 'admin' } });
      const otherPassword = String((other?.initialAdmin as { password: string }).password);
      await page.reload();
      const row = page.locator('tr', { has: page.getByRole('rowheader', { name: new RegExp(`^acme-${dialect}`) }) });
      await row.waitFor();
      await shot('overview-tenants');
      await row.getByRole('button', { name: `Switch to acme-${dialect}` }).click();
      await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
      await page.getByText('A session belongs to one tenant').waitFor();
      assert.equal(await page.getByLabel('Tenant').inputValue(), `acme-${dialect}`);
      assert.equal(await page.getByLabel('User name').inputValue(), 'admin');
      // The password is what is left to type.
      await page.locator('#login-password:focus').waitFor();
      await page.getByLabel('Password', { exact: true }).fill(otherPassword);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      assert.match(await page.locator('header .who').innerText(), new RegExp(`admin in tenant acme-${dialect}`));

      // Not the system tenant: its admins are told where the settings are, and nothing is refused.
      await nav('Settings');
      await page.getByRole('heading', { name: 'Only the system tenant\'s administrators see the settings' }).waitFor();
      await shot('settings-other-tenant');

      // "Switch tenant" at the top: the tenant to type, the user name kept.
      await page.getByRole('button', { name: 'Switch tenant' }).click();
      await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
      assert.equal(await page.getByLabel('Tenant').inputValue(), '');
      await page.locator('#login-tenant:focus').waitFor();
      await page.getByLabel('Tenant').fill('default');
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      assert.match(await page.locator('header .who').innerText(), /admin in tenant default/);
    });

    it('lists the end users\' connections, filters them by end user and connector, page by page', async () => {
      await nav('Connections');
      await page.getByRole('heading', { name: 'No connections yet' }).waitFor();
      await shot('connections-empty');
      const endUsers = Array.from({ length: 27 }, (_, i) => `user-${String(i).padStart(2, '0')}@acme.example`);
      for (const endUser of endUsers) await connectEndUser(endUser);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('heading', { name: 'All connections' }).waitFor();
      const rows = page.locator('section[aria-labelledby="connections-title"] tbody tr');
      // The rows of the page asked for, once the last one is gone (the previous page stays while the next loads).
      const exactly = async (n: number) => {
        await rows.nth(n).waitFor({ state: 'detached' });
        assert.equal(await rows.count(), n);
      };
      await page.getByText('Page 1').waitFor();
      await rows.nth(24).waitFor();
      await exactly(25);
      assert.match(await rows.first().innerText(), /end user user-\d\d@acme\.example\s+Billing API\s+connected/);
      await shot('connections');
      await page.getByRole('button', { name: 'Next page' }).click();
      await page.getByText('Page 2').waitFor();
      await page.getByRole('button', { name: 'Next page', disabled: true }).waitFor();
      await exactly(2);
      await page.getByRole('rowheader', { name: 'end user user-26@acme.example' }).waitFor();
      await page.getByRole('button', { name: 'Previous page' }).click();
      await page.getByText('Page 1').waitFor();

      await page.getByLabel('End user ID').fill('user-07@acme.example');
      await page.getByLabel('Connector').selectOption({ label: 'Billing API' });
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('heading', { name: 'Matching connections' }).waitFor();
      await page.getByRole('rowheader', { name: 'end user user-07@acme.example' }).waitFor();
      await exactly(1);
      await shot('connections-filtered');
      await page.getByLabel('End user ID').fill('nobody@acme.example');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('heading', { name: 'No connection matches these filters' }).waitFor();
      await page.getByRole('button', { name: 'Clear filters' }).first().click();
      await page.getByRole('heading', { name: 'All connections' }).waitFor();
      assert.equal(await page.getByLabel('End user ID').inputValue(), '');
    });

    it('creates users, groups and roles, edits memberships and grants, disables a user; errors sit next to their field', async () => {
      await nav('Users');
      await page.getByRole('heading', { name: 'Create a user' }).waitFor();
      await page.getByLabel('User name').fill('carol smith');
      await page.getByLabel('Password (optional)').fill(carolPassword);
      await page.getByRole('button', { name: 'Create user' }).click();
      await page.locator('#user-username-error').waitFor();
      assert.match(await page.locator('#user-username-error').innerText(), /^User name must be 1 to 128 letters/);
      assert.equal(await page.getByLabel('User name').getAttribute('aria-invalid'), 'true');
      expectOnly(browser, /400 for POST .*\/api\/v1\/users$/, /console error .*400/);
      // A refused form keeps every field, the password too: a corrected retry does not make a user without one.
      assert.equal(await page.getByLabel('Password (optional)').inputValue(), carolPassword);
      await page.getByLabel('Password (optional)').fill('');
      await page.getByLabel('User name').fill('carol');
      await page.getByLabel('Display name (optional)').fill('Carol Smith');
      await page.getByRole('group', { name: 'Roles' }).getByLabel('viewer (built-in)').check();
      await page.getByRole('button', { name: 'Create user' }).click();
      await page.getByText('User “carol” created.').waitFor();
      const carol = page.locator('tr', { has: page.getByRole('rowheader', { name: /^carol/ }) });
      assert.match(await carol.innerText(), /active\s+viewer\s+—\s+none \(API keys only\)/);

      await nav('Groups');
      await page.getByRole('heading', { name: 'No groups yet' }).waitFor();
      await shot('groups-empty');
      await page.getByLabel('Name').fill('support');
      await page.getByRole('button', { name: 'Create group' }).click();
      await page.getByText('Group “support” created.').waitFor();
      // A taken name is refused next to the name.
      await page.getByLabel('Name').fill('support');
      await page.getByRole('button', { name: 'Create group' }).click();
      await page.locator('#group-name-error').waitFor();
      expectOnly(browser, /409 for POST .*\/api\/v1\/groups$/, /console error .*409/);
      await page.getByLabel('Name').fill('');
      const support = page.locator('tr', { has: page.getByRole('rowheader', { name: 'support' }) });
      await support.getByRole('button', { name: 'Edit support' }).click();
      const editGroup = page.getByRole('dialog', { name: 'Edit group' });
      await editGroup.getByRole('group', { name: 'Members' }).getByLabel('carol').check();
      await editGroup.getByRole('group', { name: 'Roles' }).getByLabel('editor').check();
      await shot('groups-edit');
      await editGroup.getByRole('button', { name: 'Save group' }).click();
      await page.getByText('Group “support” saved.').waitFor();
      assert.match(await support.innerText(), /support\s+carol\s+editor/);
      await shot('groups');

      await nav('Roles');
      await page.getByRole('heading', { name: 'Create a role' }).waitFor();
      await page.getByLabel('Name').fill('auditor');
      await page.getByLabel('Description (optional)').fill('Reads the audit log');
      await page.getByRole('group', { name: 'Permissions' }).getByLabel('audit:read').check();
      await page.getByRole('button', { name: 'Create role' }).click();
      await page.getByText('Role “auditor” created.').waitFor();
      const auditor = page.locator('tr', { has: page.getByRole('rowheader', { name: /^auditor/ }) });
      await auditor.getByRole('button', { name: 'Edit auditor' }).click();
      const editRole = page.getByRole('dialog', { name: 'Edit role' });
      await editRole.getByRole('group', { name: 'Granted to users' }).getByLabel('carol').check();
      await editRole.getByRole('button', { name: 'Save role' }).click();
      await page.getByText('Role “auditor” saved.').waitFor();
      assert.match(await auditor.innerText(), /audit:read\s+carol/);
      await shot('roles');

      await nav('Users');
      await carol.waitFor();
      assert.match(await carol.innerText(), /active\s+(viewer, auditor|auditor, viewer)\s+support/);
      await carol.getByRole('button', { name: 'Edit carol' }).click();
      const editUser = page.getByRole('dialog', { name: 'Edit user' });
      await editUser.getByLabel('New password (optional)').fill('short');
      await editUser.getByRole('button', { name: 'Save user' }).click();
      await editUser.locator('#edit-user-password-error').waitFor();
      expectOnly(browser, /400 for PATCH .*\/api\/v1\/users\/usr_/, /console error .*400/);
      await editUser.getByLabel('New password (optional)').fill(carolPassword);
      await editUser.getByRole('group', { name: 'Groups' }).getByLabel('support').uncheck();
      await editUser.getByRole('button', { name: 'Save user' }).click();
      await page.getByText('“carol” saved.').waitFor();
      assert.match(await carol.innerText(), /active\s+(viewer, auditor|auditor, viewer)\s+—\s+set/);
      await carol.getByRole('button', { name: 'Disable carol' }).click();
      const disable = page.getByRole('dialog', { name: 'Disable user' });
      assert.match(await disable.innerText(), /API keys are refused at once/);
      await disable.getByRole('button', { name: 'Disable user' }).click();
      await page.getByText('“carol” is disabled.').waitFor();
      assert.match(await carol.innerText(), /disabled/);
      await shot('users');
      await carol.getByRole('button', { name: 'Enable carol' }).click();
      await page.getByText('“carol” is enabled.').waitFor();
      assert.match(await carol.innerText(), /active/);
    });

    it('adds a webhook endpoint (secret shown once), shows its deliveries, redelivers one, edits, rolls and deletes it', async () => {
      await nav('Webhooks');
      await page.getByRole('heading', { name: 'No webhook endpoints yet' }).waitFor();
      await shot('webhooks-empty');
      await page.getByLabel('URL').fill('ftp://example.com/hooks');
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await page.locator('#webhook-url-error').waitFor();
      expectOnly(browser, /400 for POST .*\/api\/v1\/webhooks$/, /console error .*400/);
      await page.getByLabel('URL').fill(receiver.url);
      // Every event the API knows is offered, the task events too; a new endpoint starts with the connection events.
      const offered = page.locator('section[aria-labelledby="create-endpoint-title"]').getByRole('group', { name: 'Events' });
      assert.equal(await offered.getByLabel('task.failed').isChecked(), false);
      assert.equal(await offered.getByLabel('connection.created').isChecked(), true);
      await page.getByLabel('Description (optional)').fill('The billing service');
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      const shown = page.getByRole('textbox', { name: 'The signing secret', exact: true });
      await shown.waitFor();
      const secret = await shown.inputValue();
      assert.match(secret, /^whsec_/);
      await page.getByText('It is shown only this once').waitFor();
      await page.getByRole('button', { name: 'Copy' }).click();
      await page.getByText('Copied to the clipboard.').waitFor();
      assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText()), secret);
      await shot('webhooks-created');
      await page.getByRole('button', { name: 'I have stored the signing secret' }).click();
      await shown.waitFor({ state: 'detached' });
      assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page');

      // An event: the receiver refuses it first (503), then takes the redelivery.
      await connectEndUser('webhook-user@acme.example');
      const row = page.locator('tr', { has: page.getByRole('rowheader', { name: receiver.url }) });
      await row.getByRole('button', { name: `Deliveries of ${receiver.url}` }).click();
      const deliveries = page.locator('section[aria-labelledby="deliveries-title"]');
      const delivery = deliveries.locator('tbody tr').first();
      const reloadUntil = async (status: RegExp) => {
        for (let i = 0; i < 300 && !status.test((await delivery.innerText().catch(() => '')) ?? ''); i++) {
          await sleep(100);
          await deliveries.getByRole('button', { name: 'Reload deliveries' }).click();
          await deliveries.getByRole('button', { name: 'Reload deliveries' }).waitFor();
        }
        assert.match(await delivery.innerText(), status);
      };
      await reloadUntil(/connection\.created[\s\S]*pending\s+1\s+HTTP 503/);
      await shot('webhooks-deliveries');
      receiver.status = 200;
      await delivery.getByRole('button', { name: /^Redeliver connection\.created/ }).click();
      await deliveries.getByText('The connection.created delivery is queued again.').waitFor();
      await reloadUntil(/succeeded\s+\d+\s+HTTP 200/);
      const last = receiver.received[receiver.received.length - 1];
      assert.ok(last);
      const verified = new Webhook(secret).verify(last.body, last.headers as Record<string, string>) as { type: string };
      assert.equal(verified.type, 'connection.created', 'signed with the secret shown once');
      assert.equal(receiver.received[0]?.headers['webhook-id'], last.headers['webhook-id'], 'the same message id on redelivery');
      await deliveries.getByLabel('Status').selectOption('failed');
      await deliveries.getByRole('heading', { name: 'No delivery with this status' }).waitFor();

      await row.getByRole('button', { name: `Edit ${receiver.url}` }).click();
      const edit = page.getByRole('dialog', { name: 'Edit endpoint' });
      await edit.getByRole('group', { name: 'Events' }).getByLabel('connection.deleted').uncheck();
      await edit.getByRole('group', { name: 'Events' }).getByLabel('task.failed').check();
      await edit.getByLabel('Description').fill('Billing, without deletions');
      await edit.getByRole('button', { name: 'Save endpoint' }).click();
      await page.getByText(`Endpoint ${receiver.url} saved.`).waitFor();
      assert.doesNotMatch(await row.innerText(), /connection\.deleted/);
      assert.match(await row.innerText(), /task\.failed/);
      const stored = (await call('GET', '/webhooks')) as { items: Array<{ url: string; events: string[] }> };
      assert.ok(stored.items.find((e) => e.url === receiver.url)?.events.includes('task.failed'), 'saved through the API');

      await row.getByRole('button', { name: `Roll secret of ${receiver.url}` }).click();
      await page.getByRole('dialog', { name: 'Roll signing secret' }).getByRole('button', { name: 'Roll secret' }).click();
      await page.getByText('For 24 hours messages are signed with the previous secret too').waitFor();
      const rolled = await shown.inputValue();
      assert.match(rolled, /^whsec_/);
      assert.notEqual(rolled, secret);
      await page.getByRole('button', { name: 'I have stored the signing secret' }).click();
      await row.getByText('the previous secret signs too until').waitFor();
      await shot('webhooks');

      await row.getByRole('button', { name: `Delete ${receiver.url}` }).click();
      const del = page.getByRole('dialog', { name: 'Delete endpoint' });
      assert.match(await del.innerText(), /This cannot be undone/);
      await del.getByRole('button', { name: 'Delete endpoint' }).click();
      await page.getByRole('heading', { name: 'No webhook endpoints yet' }).waitFor();
    });

    it('reads the audit log with filters on action, actor, target and time; a bad filter is named', async () => {
      await nav('Audit log');
      const rows = page.locator('section[aria-labelledby="events-title"] tbody tr');
      await rows.first().waitFor();
      await shot('audit');
      await page.getByLabel('Action').fill('user.created');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('heading', { name: 'Matching events' }).waitFor();
      await page.locator('section[aria-labelledby="events-title"] tbody th', { hasNotText: 'user.created' }).first().waitFor({ state: 'detached' });
      const actions = await page.locator('section[aria-labelledby="events-title"] tbody th').allInnerTexts();
      assert.ok(actions.length >= 1 && actions.every((a) => a === 'user.created'), actions.join());
      assert.match(await rows.first().innerText(), /user\.created\s+user:usr_\w+\s+usr_\w+/);
      await shot('audit-filtered');

      // A time range in the future holds nothing; a range around now holds carol's creation.
      await page.getByLabel('From').fill('2999-01-01T00:00:00');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('heading', { name: 'No event matches these filters' }).waitFor();
      await page.getByLabel('From').fill('2000-01-01T00:00:00');
      await page.getByLabel('Until').fill('2999-01-01T00:00:00');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('rowheader', { name: 'user.created' }).first().waitFor();

      await page.getByLabel('Actor').fill('nobody');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.locator('#audit-actor-error').waitFor();
      assert.match(await page.locator('#audit-actor-error').innerText(), /^Actor must look like "user:<id>"/);
      expectOnly(browser, /400 for GET .*\/api\/v1\/audit\?/, /console error .*400/);
      await page.getByRole('button', { name: 'Clear filters' }).first().click();
      await page.getByRole('heading', { name: 'Events' }).waitFor();
    });

    it('shows the effective configuration without a secret, and doctor\'s checks with progress', async () => {
      await nav('Settings');
      const check = (name: string) => page.locator(`tr[data-check="${name}"]`);
      await check('database').waitFor();
      assert.match(await check('database').innerText(), new RegExp(`database\\s+ok\\s+reachable \\(${dialect} at `));
      assert.match(await check('migrations').innerText(), /ok\s+all applied/);
      await page.getByText(/Everything looks right/).waitFor();
      const setting = (name: string) => page.locator(`tr[data-setting="${name}"]`);
      assert.match(await setting('encryptionKey').innerText(), /^encryptionKey\s+set\s+LATCHKEY_ENCRYPTION_KEY\s+none \(never a flag\)$/);
      assert.match(await setting('databaseUrl').innerText(), dialect === 'postgres' ? /databaseUrl\s+set\s/ : /databaseUrl\s+not set\s/);
      assert.match(await setting('publicUrl').innerText(), /^publicUrl\s+http:\/\/127\.0\.0\.1:\d+\s/);
      assert.match(await setting('egressAllow').innerText(), /127\.0\.0\.1\/32/);
      const html = await page.content();
      assert.ok(!html.includes(String(readFileSync(join(tdb.dataDir, 'initial-admin-password'), 'utf8').trim())));
      assert.ok(env['LATCHKEY_ENCRYPTION_KEY'] && !html.includes(env['LATCHKEY_ENCRYPTION_KEY']), 'never the master key');
      if (tdb.url) assert.ok(!html.includes(tdb.url) && !html.includes('search_path'), 'never the database URL');
      await shot('settings');
      await page.getByRole('button', { name: 'Run checks again' }).click();
      await page.getByRole('button', { name: 'Run checks again' }).waitFor();
      await page.getByText(/Everything looks right/).waitFor();
    });

    it('works every new page by keyboard, every control labelled', async () => {
      // Through the navigation, so no page's requests are cut off by a new document.
      for (const link of PAGES.filter((p) => !['Overview', 'Connectors', 'API keys', 'Tasks'].includes(p))) {
        await open(link);
        assert.deepEqual(await unlabelled(page), [], `unlabelled controls on the ${link} page`);
      }
      await page.locator('tr[data-setting="port"]').waitFor();
      await page.getByText(/Everything looks right/).waitFor();

      // A group made and deleted with the keyboard alone.
      await page.goto(`${server.url}/console/groups`);
      await page.getByRole('heading', { name: 'Groups', level: 1 }).waitFor();
      await page.getByRole('rowheader', { name: 'support' }).waitFor();
      await page.keyboard.press('Tab');
      assert.equal((await focused(page)).name, 'Skip to content');
      await page.keyboard.press('Enter');
      // The skip link moves focus past the header: the next Tab is inside the page, not the brand link.
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.activeElement?.id === 'main');
      await page.keyboard.press('Tab');
      assert.notEqual((await focused(page)).name, 'Latchkey', 'the header is skipped');
      await tabTo(page, (el) => el.id === 'group-name');
      await page.keyboard.type('on-call');
      await page.keyboard.press('Enter');
      await page.getByText('Group “on-call” created.').waitFor();
      await tabTo(page, (el) => el.name === 'Delete on-call', 60);
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Delete group' });
      await dialog.waitFor();
      assert.equal((await focused(page)).name, 'Cancel', 'the safe choice has focus');
      await tabTo(page, (el) => el.name === 'Delete group', 2);
      await page.keyboard.press('Enter');
      await page.getByText('Group “on-call” deleted.').waitFor();
      assert.equal((await focused(page)).id, 'groups-title', 'focus goes to the list');
      await shot('groups-keyboard');
    });

    it('creates a per-user API key connector: no credential asked of the admin, each user gives their own; its status is the user\'s', async () => {
      await nav('Connectors');
      const billing = page.locator('tr', { has: page.getByRole('rowheader', { name: /Billing API/ }) });
      assert.equal(await billing.locator('[data-status]').innerText(), 'not connected', 'a per-user bearer connector without this user\'s connection');
      await page.getByRole('link', { name: 'Create connector' }).first().click();
      await page.getByLabel('Provider').selectOption({ label: 'Generic HTTP API' });
      await page.getByLabel('Authentication').selectOption('api_key');
      await page.getByLabel('API key value').waitFor();
      await page.getByRole('group', { name: 'Connections' }).getByLabel('Each user connects their own account').check();
      await page.getByLabel('API key value').waitFor({ state: 'detached' });
      await page.getByText('Each user gives their own credential').waitFor();
      await page.getByLabel('Name', { exact: true }).fill('Ledger');
      await page.getByLabel('API base URL').fill('https://ledger.internal.example/v2');
      await page.getByLabel('Header or parameter name').fill('X-Api-Key');
      await page.getByRole('button', { name: 'Create connector' }).click();
      const ledger = page.locator('tr', { has: page.getByRole('rowheader', { name: /Ledger/ }) });
      await ledger.waitFor();
      assert.equal(await ledger.locator('[data-status]').innerText(), 'not connected');
      const listed = (await call('GET', '/connectors')) as { items: Array<{ name: string; authType: string; tokenMode: string }> };
      assert.deepEqual(
        listed.items.filter((c) => c.name === 'Ledger').map((c) => [c.authType, c.tokenMode]),
        [['api_key', 'per_user']],
      );
      await shot('connector-per-user-api-key');
    });

    it('fits a phone\'s width: no page scrolls sideways, the navigation wraps', async () => {
      await page.setViewportSize({ width: 375, height: 740 });
      try {
        for (const link of PAGES) {
          await open(link);
          const { scrollWidth, innerWidth } = await page.evaluate(() => {
            const g = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
            return { scrollWidth: g.document.documentElement.scrollWidth, innerWidth: g.innerWidth };
          });
          assert.ok(scrollWidth <= innerWidth, `the ${link} page is ${scrollWidth}px wide in a ${innerWidth}px window`);
        }
        await shot('phone-width');
      } finally {
        await page.setViewportSize({ width: 1280, height: 860 });
      }
    });

    it('shows a user without identity:admin only their pages; an admin page\'s address says which permission it needs', async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
      await logIn(page, server.url, { username: 'carol', password: carolPassword });
      const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
      assert.deepEqual(links, ['Overview', 'Connectors', 'Connections', 'API keys', 'Tasks', 'Audit log'], 'viewer and auditor: tasks to read, no webhooks, users, groups, roles or settings');
      for (const [path, heading] of [
        ['/users', 'You may not manage users'],
        ['/settings', 'You may not see the server\'s settings'],
        ['/webhooks', 'You may not see webhooks'],
      ] as const) {
        await page.goto(`${server.url}/console${path}`);
        await page.getByRole('heading', { name: heading }).waitFor();
        assert.match(await page.locator('main').innerText(), /permission, which your roles do not grant/);
      }
      await shot('users-not-admin');
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
    });
});
