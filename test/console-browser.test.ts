// The web console in a real browser (Debian's chromium through playwright-core) against a real
// `latchkey serve` process on SQLite (the API under it is tested on both databases elsewhere) and a
// real OpenID provider: logging in, creating an OAuth connector and connecting it in a popup,
// creating, copying, listing and revoking an API key, and the API key page by keyboard alone.
// Every test fails on any console error, uncaught exception, failed request or error answer on
// Latchkey's pages. Screenshots of each page go to test-results/screenshots/.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { CHROMIUM, launchChromium, type PageGlobals, type TestBrowser } from './support/chromium.js';
import { startServer, type ServerProcess } from './support/cli.js';
import { buildConsole, focused, logIn, tabTo, unlabelled } from './support/console.js';
import { createTestDatabase, latchkeyEnv, LOOPBACK_EGRESS, type TestDatabase } from './support/databases.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

let tdb: TestDatabase;
let server: ServerProcess;
let op: TestProvider;
let browser: TestBrowser;
let password: string;

async function call(method: string, path: string, key: string): Promise<number> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `ApiKey ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
  await buildConsole();
  tdb = await createTestDatabase('sqlite');
  const env = latchkeyEnv(tdb, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
  server = await startServer([], { env });
  password = readFileSync(join(tdb.dataDir, 'initial-admin-password'), 'utf8').trim();
  op = await startOidcProvider({ redirectUris: [`${server.url}/api/v1/oauth/callback`] });
  browser = await launchChromium(server.url);
});

after(async () => {
  await browser?.close();
  await op?.stop();
  await server?.stop();
  await tdb?.dispose();
});

describe('web console in chromium', () => {
  let page: Page;
  before(async () => {
    page = await browser.context.newPage();
  });
  afterEach(async () => {
    assert.deepEqual(browser.takeProblems(), [], 'no console error or failed request on Latchkey\'s pages');
  });

  it('serves the built console with its security headers and no inline script', async () => {
    const res = await fetch(`${server.url}/console/`);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-security-policy')), /script-src 'self';.*frame-ancestors 'none'/);
    assert.doesNotMatch(String(res.headers.get('content-security-policy')), /unsafe-inline/);
    for (const script of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/g) ?? []) assert.match(script, /^<script\b[^>]*\bsrc="\/console\/assets\/[^"]+"[^>]*><\/script>$/, script);
    const root = await fetch(`${server.url}/`, { redirect: 'manual' });
    assert.deepEqual([root.status, root.headers.get('location')], [302, '/console/']);
  });

  it('logs in with the first admin password and shows who you are and which tenant; logs out', async () => {
    await browser.context.clearCookies();
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/');
    await browser.screenshot(page, 'login');
    await logIn(page, server.url, { password });
    const facts = await page.locator('dl.facts').innerText();
    assert.match(facts, /User\s+admin usr_/);
    assert.match(facts, /Tenant\s+default ten_/);
    assert.match(facts, /identity:admin/);
    assert.match(await page.locator('header .who').innerText(), /admin in tenant default/);
    await browser.screenshot(page, 'overview');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
    await page.getByText('You are logged out.').waitFor();
    // A reload stays logged out: the cookies are gone.
    await page.reload();
    await page.getByRole('heading', { name: 'Log in to Latchkey' }).waitFor();
    await logIn(page, server.url, { password });
  });

  it('creates an OAuth connector from the catalog, connects it in a popup and shows "connected" without a reload', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connectors' }).click();
    await page.getByRole('heading', { name: 'No connectors yet' }).waitFor();
    await browser.screenshot(page, 'connectors-empty');
    // Marks this document: a reload would lose it.
    await page.evaluate(() => ((globalThis as unknown as PageGlobals).sameDocument = true));

    await page.getByRole('link', { name: 'Create connector' }).first().click();
    await page.getByLabel('Provider').selectOption({ label: 'Generic OpenID Connect' });
    await page.getByLabel('Issuer').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Local IdP');
    assert.equal(await page.getByLabel('Authentication').inputValue(), 'oauth_authorization_code');
    await page.getByLabel('Issuer').fill(op.issuer);
    await page.getByLabel('Client ID').fill(op.clients.basic.clientId);
    await page.getByLabel('Scopes (optional)').fill('openid api:read');
    const secret = page.getByLabel('Client secret');
    assert.equal(await secret.getAttribute('type'), 'password', 'secrets are typed masked');
    await secret.fill(op.clients.basic.clientSecret);
    await browser.screenshot(page, 'connector-new');
    await page.getByRole('button', { name: 'Create connector' }).click();

    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: /Local IdP/ }) });
    await row.waitFor();
    assert.equal(await row.locator('[data-status]').innerText(), 'not connected');

    const popupOpened = browser.context.waitForEvent('page');
    await row.getByRole('button', { name: 'Connect Local IdP' }).click();
    const popup = await popupOpened;
    await popup.locator('input[name="login"]').waitFor();
    await browser.screenshot(popup, 'popup-provider-login');
    await popup.locator('input[name="login"]').fill('alice');
    await popup.locator('input[name="password"]').fill('any');
    await popup.getByRole('button', { name: 'Sign-in' }).click();
    // Back on Latchkey, the popup tells the console, which closes it (watched for before the
    // click: the window may close before the click's own promise settles).
    const popupClosed = popup.waitForEvent('close');
    await popup.getByRole('button', { name: 'Continue' }).click();
    await popupClosed;

    await row.locator('[data-status]', { hasText: /^connected$/ }).waitFor();
    await page.getByText('“Local IdP” is connected.').waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).sameDocument), true, 'no reload');
    await browser.screenshot(page, 'connectors-connected');

    // Editing shows the secret as set, never its value.
    await page.getByRole('link', { name: 'Local IdP' }).click();
    await page.getByRole('heading', { name: 'Edit Local IdP' }).waitFor();
    const edited = page.getByLabel('Client secret');
    assert.equal(await edited.inputValue(), '');
    assert.match(await page.locator('#field-secrets-clientSecret-hint').innerText(), /\bset\b.*Leave empty to keep it/);
    assert.ok(!(await page.content()).includes(op.clients.basic.clientSecret), 'the secret is nowhere on the page');
    assert.equal(await page.getByLabel('Issuer').inputValue(), op.issuer);
    await browser.screenshot(page, 'connector-edit');
    await page.getByRole('link', { name: 'Cancel' }).click();

    // Force a refresh, then disconnect with confirmation.
    await row.getByRole('button', { name: 'Refresh Local IdP' }).click();
    await page.getByText('“Local IdP” was refreshed.').waitFor();
    assert.equal(op.counters.refresh, 1, 'one refresh at the provider');
    await row.getByRole('button', { name: 'Disconnect Local IdP' }).click();
    const dialog = page.getByRole('dialog', { name: 'Disconnect' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Disconnect' }).click();
    await row.locator('[data-status]', { hasText: /^not connected$/ }).waitFor();
    await page.getByText(/“Local IdP” is disconnected/).waitFor();

    // A refused consent: the provider's own words (its error_description) reach the page, without a reload.
    const refusedOpened = browser.context.waitForEvent('page');
    await row.getByRole('button', { name: 'Connect Local IdP' }).click();
    const refused = await refusedOpened;
    // Signed in already at the provider: its consent page, whose Cancel refuses.
    const refusedClosed = refused.waitForEvent('close');
    await refused.getByRole('link', { name: '[ Cancel ]' }).click();
    await refusedClosed;
    await page.getByText(/^Connecting failed: .*did not authorize the connection: End-User aborted interaction\.$/).waitFor();
    assert.equal(await row.locator('[data-status]').innerText(), 'not connected');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).sameDocument), true, 'no reload');
    await browser.screenshot(page, 'connectors-refused');
  });

  it('creates an API key shown once, copies it, lists it masked and revokes it after confirmation', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
    await browser.screenshot(page, 'api-keys-empty');

    // A missing name is refused next to the field.
    await page.getByRole('button', { name: 'Create key' }).click();
    assert.equal(await page.locator('#key-name-error').innerText(), 'Name must not be empty.');
    assert.equal(await page.getByLabel('Name').getAttribute('aria-invalid'), 'true');

    await page.getByLabel('Name').fill('ci-deploy');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByLabel('The new API key');
    await shown.waitFor();
    const key = await shown.inputValue();
    assert.match(key, /^lk_[0-9A-Za-z]+_[0-9A-Za-z]+$/);
    await page.getByText('It is shown only this once').waitFor();
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText()), key);
    await browser.screenshot(page, 'api-keys-created');
    assert.equal(await call('GET', '/api/v1/me', key), 200, 'the key works');

    await page.getByRole('button', { name: 'I have stored the key' }).click();
    await shown.waitFor({ state: 'detached' });
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ci-deploy' }) });
    const masked = await row.locator('code').innerText();
    assert.match(masked, /^lk_[0-9A-Za-z]+_…[0-9A-Za-z]{4}$/);
    assert.ok(key.endsWith(masked.slice(-4)));
    assert.ok(!(await page.content()).includes(key), 'the whole key is gone from the page');
    await page.reload();
    await row.waitFor();
    assert.ok(!(await page.content()).includes(key), 'and never comes back');
    await browser.screenshot(page, 'api-keys-list');

    // Rolling with a grace period: a new secret shown once, the old one still works meanwhile.
    await row.getByRole('button', { name: 'Roll ci-deploy' }).click();
    const roll = page.getByRole('dialog', { name: 'Roll key' });
    await roll.getByLabel('Grace period for the old key').selectOption({ label: '1 hour' });
    await roll.getByRole('button', { name: 'Roll key' }).click();
    await page.getByText('The old key keeps working for 1 hour.').waitFor();
    const rolled = await shown.inputValue();
    assert.notEqual(rolled, key);
    assert.equal(rolled.slice(0, rolled.lastIndexOf('_')), key.slice(0, key.lastIndexOf('_')), 'same key id');
    assert.deepEqual([await call('GET', '/api/v1/me', rolled), await call('GET', '/api/v1/me', key)], [200, 200]);
    await page.getByRole('button', { name: 'I have stored the key' }).click();
    await shown.waitFor({ state: 'detached' });

    await row.getByRole('button', { name: 'Revoke ci-deploy' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke key' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /This cannot be undone/);
    await browser.screenshot(page, 'api-keys-revoke');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await call('GET', '/api/v1/me', key), 200, 'cancel revokes nothing');
    await row.getByRole('button', { name: 'Revoke ci-deploy' }).click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await row.locator('.badge', { hasText: /^revoked$/ }).waitFor();
    await page.getByText('Key “ci-deploy” is revoked.').waitFor();
    assert.equal(await row.getByRole('button').count(), 0, 'a revoked key has no actions');
    assert.equal(await call('GET', '/api/v1/me', key), 401, 'the key is refused');
    assert.equal(await call('GET', '/api/v1/me', rolled), 401, 'its new secret too');
  });

  it('works the API key page by keyboard alone, every control labelled', async () => {
    await page.goto(`${server.url}/console/api-keys`);
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    assert.deepEqual(await unlabelled(page), []);

    // The first Tab reaches the skip link, which jumps past the navigation.
    await page.keyboard.press('Tab');
    assert.equal((await focused(page)).name, 'Skip to content');
    await page.keyboard.press('Enter');
    await tabTo(page, (el) => el.id === 'key-name');
    await page.keyboard.type('keyboard-key');
    await page.keyboard.press('Enter');
    await page.getByLabel('The new API key').waitFor();
    assert.equal((await focused(page)).id, 'issued-title', 'focus moves to the new key');
    const key = await page.getByLabel('The new API key').inputValue();
    await tabTo(page, (el) => el.name === 'Copy', 3);
    await page.keyboard.press('Enter');
    await page.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText()), key);
    await tabTo(page, (el) => el.name === 'I have stored the key', 3);
    await page.keyboard.press('Space');
    await page.getByLabel('The new API key').waitFor({ state: 'detached' });
    assert.equal((await focused(page)).id, 'keys-title', 'focus goes to the list');

    // Escape closes the confirmation and gives focus back; Enter on the confirm button revokes.
    await tabTo(page, (el) => el.name === 'Revoke keyboard-key');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Revoke key' });
    await dialog.waitFor();
    assert.equal((await focused(page)).name, 'Cancel', 'the safe choice has focus');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await focused(page)).name, 'Revoke keyboard-key');
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    // Escape then a click that reopens it before the page has handled the close (a fast hand; it
    // happened under load): what the platform does in one task, a cancelable cancel event, the
    // close unless it was prevented, then the click.
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { dispatchEvent(e: unknown): boolean; close(): void; click(): void } } }).document;
      const opened = doc.querySelector('dialog[open]');
      if (opened.dispatchEvent(new Event('cancel', { cancelable: true }))) opened.close();
      doc.querySelector('button[aria-label="Revoke keyboard-key"]').click();
    });
    // A task queued after the close event's: by the time it runs, that event has been handled.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
    assert.ok(await dialog.isVisible(), 'the reopened confirmation stays open');
    // Escape again, and a click that asks for it once more in the moment between the dialog
    // shutting and its close event (a queued task; the browser may run input first, and under load
    // it did): the close the page made itself is not taken for a second Escape.
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          type Element = { open: boolean; dispatchEvent(e: unknown): boolean; click(): void };
          const { document, MutationObserver } = globalThis as unknown as {
            document: { querySelector(s: string): Element };
            MutationObserver: new (callback: (records: unknown, observer: { disconnect(): void }) => void) => {
              observe(target: Element, options: { attributes: boolean; attributeFilter: string[] }): void;
            };
          };
          const opened = document.querySelector('dialog[open]');
          new MutationObserver((_, observer) => {
            if (opened.open) return;
            observer.disconnect();
            document.querySelector('button[aria-label="Revoke keyboard-key"]').click();
            resolve();
          }).observe(opened, { attributes: true, attributeFilter: ['open'] });
          opened.dispatchEvent(new Event('cancel', { cancelable: true }));
        }),
    );
    // Two frames and a task: the close event and the page's effects have all run.
    await page.evaluate(() => {
      const { requestAnimationFrame } = globalThis as unknown as { requestAnimationFrame(f: () => void): void };
      return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 0))));
    });
    assert.ok(await dialog.isVisible(), 'the confirmation asked for again stays open');
    await tabTo(page, (el) => el.name === 'Revoke key', 2);
    await page.keyboard.press('Enter');
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'keyboard-key' }) });
    await row.locator('.badge', { hasText: /^revoked$/ }).waitFor();
    assert.equal((await focused(page)).id, 'keys-title');
    assert.equal(await call('GET', '/api/v1/me', key), 401);
    await browser.screenshot(page, 'api-keys-keyboard');
  });

  it('the watch on the page catches console errors, uncaught errors and failed requests', async () => {
    await page.evaluate(async () => {
      console.error('deliberate');
      setTimeout(() => {
        throw new Error('deliberate too');
      });
      await fetch('/api/v1/no-such-route').catch(() => undefined);
    });
    await page.waitForFunction(() => new Promise((resolve) => setTimeout(() => resolve(true))));
    const caught = browser.takeProblems().join('\n');
    assert.match(caught, /console error on .*deliberate/);
    assert.match(caught, /uncaught Error on .*deliberate too/);
    assert.match(caught, /404 for GET .*\/api\/v1\/no-such-route/);
  });
});
