// The console's Tasks page in a real browser (Debian's chromium through playwright-core) against the
// in-process app listening on loopback, on SQLite and on PostgreSQL, with the real task engine: a
// registered task type that fails with a LatchkeyError shows its run's error; run now, disable,
// filters, delete and bulk delete go through the page. Fails on any console error, uncaught
// exception, failed request or error answer. Screenshots go to test-results/screenshots/.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, it } from 'node:test';
import type { Page } from 'playwright-core';
import { z } from 'zod';
import { LatchkeyError } from '../src/core/index.js';
import { CHROMIUM, launchChromium, type TestBrowser } from './support/chromium.js';
import { buildConsole, logIn, tabTo, unlabelled } from './support/console.js';
import { eachDialect } from './support/databases.js';
import { createHttpHarness, type HttpHarness } from './support/http.js';
import { until } from './support/webhook-receiver.js';

const FAILING = 'report.build';
const FINE = 'report.tidy';
const FAILURE = 'The report service answered 503.';

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

await eachDialect('console tasks page in chromium', (dialect) => {
  let h: HttpHarness;
  let browser: TestBrowser;
  let page: Page;
  let url: string;
  let owner: { tenantId: string; userId: string };
  const rows = () => page.locator('section[aria-labelledby="tasks-title"] tbody tr');
  const shot = (name: string) => browser.screenshot(page, dialect === 'sqlite' ? name : `${name}-${dialect}`);
  const runsOf = async (id: string) => (await h.latchkey.tasks.get(id)).runs.length;

  before(async () => {
    h = await createHttpHarness(dialect, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true' }, { tasks: { pollIntervalMs: 20 } });
    h.latchkey.tasks.register({
      type: FAILING,
      paramsSchema: z.unknown(),
      maxAttempts: 1,
      run: () => {
        throw new LatchkeyError('provider_unavailable', FAILURE);
      },
    });
    h.latchkey.tasks.register({ type: FINE, paramsSchema: z.unknown(), run: () => ({ tidied: 3 }) });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    const me = await h.call({ method: 'GET', url: '/api/v1/me', cookie: await h.login('default', 'admin', h.adminPassword) });
    assert.equal(me.status, 200, me.text);
    owner = { tenantId: me.json.tenant.id as string, userId: me.json.user.id as string };
    browser = await launchChromium(url);
    page = await browser.context.newPage();
    await logIn(page, url, { password: h.adminPassword });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });
  afterEach(() => {
    assert.deepEqual(browser.takeProblems(), [], 'no console error or failed request on Latchkey\'s pages');
  });

  it('says how to schedule a task when there is none', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks', exact: true }).click();
    await page.getByRole('heading', { name: 'No tasks yet' }).waitFor();
    await page.getByText('POST /api/v1/tasks').waitFor();
    await page.getByText('client.tasks.create').first().waitFor();
    await shot('tasks-empty');
  });

  it('shows the failed run\'s error, runs it again now and disables it', async () => {
    const failing = await h.latchkey.tasks.schedule({ type: FAILING, owner });
    await until('the task to fail', async () => ((await h.latchkey.tasks.get(failing.id)).status === 'failed' ? true : undefined));
    await page.getByRole('button', { name: 'Reload tasks' }).click();
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: new RegExp(failing.id) }) });
    await row.getByText(FAILURE).waitFor();
    assert.equal(await row.locator('[data-status]').innerText(), 'failed');
    assert.deepEqual(await unlabelled(page), []);

    // The run history, by keyboard: Tab to the task's Runs button and press Enter.
    await page.getByLabel('Type').focus();
    await tabTo(page, (el) => el.name === `Runs of ${FAILING} ${failing.id}`);
    await page.keyboard.press('Enter');
    const runs = page.locator('section', { has: page.getByRole('heading', { name: new RegExp(`Runs of ${FAILING}`) }) });
    await runs.getByRole('cell', { name: `provider_unavailable: ${FAILURE}` }).waitFor();
    assert.equal(await runs.locator('tbody tr').count(), 1);

    await row.getByRole('button', { name: `Run ${FAILING} ${failing.id} now` }).click();
    await page.getByRole('status').getByText(`${FAILING} ${failing.id} will run now.`).waitFor();
    await until('the second run', async () => ((await runsOf(failing.id)) === 2 ? true : undefined));
    await page.getByRole('button', { name: 'Reload tasks' }).click();
    await runs.locator('tbody tr').nth(1).waitFor();
    assert.equal(await runs.getByRole('cell', { name: `provider_unavailable: ${FAILURE}` }).count(), 2);
    await shot('tasks');

    await row.getByRole('button', { name: `Disable ${FAILING} ${failing.id}` }).click();
    await row.getByRole('button', { name: `Enable ${FAILING} ${failing.id}` }).waitFor();
    assert.equal((await h.latchkey.tasks.get(failing.id)).enabled, false);
    assert.match(await row.innerText(), /disabled/);
  });

  it('filters by status and type, deletes one and many after confirmation', async () => {
    const a = await h.latchkey.tasks.schedule({ type: FINE, owner, schedule: { every: '1h' } });
    const b = await h.latchkey.tasks.schedule({ type: FINE, owner, schedule: { every: '1h' } });
    await until('both to run', async () => ((await runsOf(a.id)) >= 1 && (await runsOf(b.id)) >= 1 ? true : undefined));
    await page.getByRole('button', { name: 'Reload tasks' }).click();
    const rows = page.locator('section[aria-labelledby="tasks-title"] tbody tr');
    await until('three rows', async () => ((await rows.count()) === 3 ? true : undefined));

    await page.getByLabel('Status').selectOption('failed');
    await until('one failed row', async () => ((await rows.count()) === 1 ? true : undefined));
    await rows.getByText(FAILURE).waitFor();
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Type').fill(FINE);
    await page.getByLabel('Type').press('Enter');
    await until('the two fine rows', async () => ((await rows.count()) === 2 ? true : undefined));
    await page.getByLabel('Type').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await until('three rows again', async () => ((await rows.count()) === 3 ? true : undefined));

    // Bulk delete: two checkboxes, a confirmation; Cancel first deletes nothing.
    await page.getByLabel(`Select ${FINE} ${a.id}`).check();
    await page.getByLabel(`Select ${FINE} ${b.id}`).check();
    await page.getByRole('button', { name: 'Delete selected (2)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete selected tasks' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await rows.count(), 3);
    await page.getByRole('button', { name: 'Delete selected (2)' }).click();
    await dialog.getByRole('button', { name: 'Delete 2 tasks' }).click();
    await page.getByRole('status').getByText('2 tasks deleted.').waitFor();
    assert.equal(await rows.count(), 1);
    for (const id of [a.id, b.id]) await assert.rejects(h.latchkey.tasks.get(id));

    // The last one, alone, after its confirmation: the empty state again.
    const [last] = (await h.latchkey.tasks.list({ tenantId: owner.tenantId })).tasks;
    assert.ok(last);
    await page.getByRole('button', { name: `Delete ${FAILING} ${last.id}` }).click();
    await page.getByRole('dialog', { name: 'Delete task' }).getByRole('button', { name: 'Delete task' }).click();
    await page.getByRole('heading', { name: 'No tasks yet' }).waitFor();
  });

  it('pages through many tasks, and shows a refused action next to its task', async () => {
    for (let i = 0; i < 26; i++) await h.latchkey.tasks.schedule({ type: FINE, owner, enabled: false });
    await page.getByRole('button', { name: 'Reload tasks' }).click();
    await until('a full page', async () => ((await rows().count()) === 25 ? true : undefined));
    const pages = page.getByRole('navigation', { name: 'Task pages' });
    await pages.getByRole('button', { name: 'Next page' }).click();
    await pages.getByText('Page 2').waitFor();
    await until('the last task alone', async () => ((await rows().count()) === 1 ? true : undefined));
    await pages.getByRole('button', { name: 'Previous page' }).click();
    await until('the first page again', async () => ((await rows().count()) === 25 ? true : undefined));

    // Deleted elsewhere meanwhile: Run now is refused, and the sentence is next to that task.
    const first = rows().first();
    const id = await first.locator('th .hint code').innerText();
    await h.latchkey.tasks.remove(id, { tenantId: owner.tenantId });
    await first.getByRole('button', { name: `Run ${FINE} ${id} now` }).click();
    const refusal = await first.getByRole('alert').innerText();
    assert.match(refusal, /\.$/);
    expectOnly(browser, new RegExp(`404 for POST .*/api/v1/tasks/${id}/_run$`), /console error .*404/);

    // Every task on the page at once; the one already gone is counted, not an error.
    await page.getByLabel('Select every task on this page').check();
    await page.getByRole('button', { name: 'Delete selected (25)' }).click();
    await page.getByRole('dialog', { name: 'Delete selected tasks' }).getByRole('button', { name: 'Delete 25 tasks' }).click();
    await page.getByRole('status').getByText('24 tasks deleted. 1 was already gone.').waitFor();
    await until('the one left', async () => ((await rows().count()) === 1 ? true : undefined));
    await page.getByLabel('Select every task on this page').check();
    await page.getByRole('button', { name: 'Delete selected (1)' }).click();
    await page.getByRole('dialog', { name: 'Delete selected tasks' }).getByRole('button', { name: 'Delete 1 task' }).click();
    await page.getByRole('heading', { name: 'No tasks yet' }).waitFor();
  });
});
