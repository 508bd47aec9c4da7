// Helpers of the console's browser tests: one build of the console shared by the test files that
// run at once, logging in, and reading focus and labels from the page.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import type { PageGlobals } from './chromium.js';
import { ROOT } from './cli.js';

const BUILT = join(ROOT, 'dist', 'console', 'index.html');
const LOCK = join(ROOT, 'dist', '.console-build-lock');

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newest(join(path, entry))));
}

/**
 * The console as `npm install` builds it, from the sources under test. Test files running at the
 * same time build it once: a build rewrites the assets a running server serves, so the second file
 * waits for the first's and reuses it when no source is newer.
 */
export async function buildConsole(): Promise<void> {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // Another test file is building; a lock older than any build can take is a crashed run's.
      const lock = statSync(LOCK, { throwIfNoEntry: false });
      if (lock !== undefined && Date.now() - lock.mtimeMs > 300_000) rmdirSync(LOCK);
      await sleep(200);
    }
  }
  try {
    const built = statSync(BUILT, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (built > Math.max(newest(join(ROOT, 'console')), newest(join(ROOT, 'package.json')))) return;
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const result = spawnSync(npm, ['run', '--silent', 'build:console'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0, `the console build failed:\n${result.stdout}\n${result.stderr}`);
  } finally {
    rmdirSync(LOCK);
  }
}

/** Logs in on the console's login page (the server's root) and waits for the overview. */
export async function logIn(page: Page, url: string, account: { tenant?: string; username?: string; password: string }): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('Tenant').fill(account.tenant ?? 'default');
  await page.getByLabel('User name').fill(account.username ?? 'admin');
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
}

export interface Focused {
  tag: string;
  id: string;
  name: string;
}

/** The element that has focus, described for assertions. */
export async function focused(page: Page): Promise<Focused> {
  return page.evaluate(() => {
    const el = (globalThis as unknown as PageGlobals).document.activeElement;
    const labelled = Array.from(el?.labels ?? []).map((l) => l.textContent ?? '').join(' ');
    return { tag: el?.tagName.toLowerCase() ?? '', id: el?.id ?? '', name: (el?.getAttribute('aria-label') ?? labelled).trim() || (el?.textContent ?? '').trim() };
  });
}

/** Presses Tab until `match` holds for the focused element (at most `limit` presses). */
export async function tabTo(page: Page, match: (el: Focused) => boolean, limit = 40): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const el = await focused(page);
    if (match(el)) return;
    seen.push(`${el.tag}#${el.id}(${el.name})`);
  }
  assert.fail(`Tab never reached the element; it went through: ${seen.join(' → ')}`);
}

/** The controls of the page that have no accessible name (none should). */
export async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from((globalThis as unknown as PageGlobals).document.querySelectorAll('input, select, button, a[href], textarea'))
      .filter((el) => {
        const name = el.getAttribute('aria-label') ?? (el.labels && el.labels.length > 0 ? 'label' : el.textContent);
        return (name ?? '').trim() === '';
      })
      .map((el) => el.outerHTML),
  );
}
