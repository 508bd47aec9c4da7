// A real browser for the console's end-to-end tests: Debian's chromium driven by playwright-core,
// with a fresh user-data-dir per launch. Every page is watched: a console error, an uncaught
// exception, a failed request or an error answer on Latchkey's origin fails the test.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './cli.js';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots');

/** An element as `page.evaluate` callbacks read it (the tests' tsconfig has no DOM types). */
export interface PageElement {
  tagName: string;
  id: string;
  textContent: string | null;
  outerHTML: string;
  getAttribute(name: string): string | null;
  labels?: ArrayLike<{ textContent: string | null }> | null;
}

/**
 * The page's globals as `page.evaluate` callbacks use them: `(globalThis as unknown as PageGlobals)`
 * inside a callback is the page's own global object when it runs there.
 */
export interface PageGlobals {
  document: { activeElement: PageElement | null; querySelectorAll(selectors: string): ArrayLike<PageElement> };
  navigator: { clipboard: { readText(): Promise<string> } };
  /** A mark a test sets on a document, to tell later whether the page was reloaded. */
  sameDocument?: boolean;
}

export interface TestBrowser {
  context: BrowserContext;
  /** What went wrong on Latchkey's pages since the last {@link TestBrowser.takeProblems}. */
  takeProblems(): string[];
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Launches chromium on a fresh profile and watches every page it opens (popups too) for problems
 * on `origin`: console errors, page errors, failed requests and answers of 400 or more. Pages on
 * other origins (the OpenID provider's sign-in pages) are not Latchkey's and are not judged.
 *
 * @example
 * const browser = await launchChromium(server.url);
 * const page = await browser.context.newPage();
 * ...
 * assert.deepEqual(browser.takeProblems(), []);
 */
export async function launchChromium(origin: string): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 860 },
      // Generous ceilings against hangs on a busy machine; no test asserts how long anything takes.
      timeout: 60_000,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(30_000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });

  const problems: string[] = [];
  const ours = (url: string) => url.startsWith(`${origin}/`) || url === origin;
  const watch = (page: Page) => {
    page.on('console', (message) => {
      if (message.type() === 'error' && ours(page.url())) problems.push(`console error on ${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => {
      if (ours(page.url())) problems.push(`uncaught ${error.name} on ${page.url()}: ${error.message}`);
    });
    page.on('requestfailed', (request) => {
      if (ours(request.url())) problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'unknown'}`);
    });
    page.on('response', (response) => {
      if (ours(response.url()) && response.status() >= 400) problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);

  return {
    context,
    takeProblems: () => problems.splice(0, problems.length),
    async screenshot(page, name) {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
