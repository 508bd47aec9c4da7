import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { resultPage } from './result-page.js';

/** Where the console is served. */
export const CONSOLE_PATH = '/console';

/**
 * The console's Content-Security-Policy: its own scripts, styles and API only; no inline script or
 * style sheet, no framing, no plugin, no base or form target elsewhere.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/** The console's build output in this package (`npm run build`, also run by `npm install`). */
export function defaultConsoleDir(): string {
  // src/http/console.ts and dist/http/console.js are both two levels below the package root.
  return fileURLToPath(new URL('../../dist/console/', import.meta.url));
}

export interface ConsoleSiteOptions {
  /** The console's build output (default: {@link defaultConsoleDir}). */
  dir?: string;
}

function consoleHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('cross-origin-resource-policy', 'same-origin');
}

const NOT_BUILT = resultPage(
  'The console is not built',
  'Run "npm run build" in the Latchkey package (npm install runs it), then restart the server. The HTTP API works without the console.',
);

/**
 * The web console at `/console` (and `/` redirects there): the built single-page app, whose every
 * path under `/console/` answers its page, its hashed assets under `/console/assets/` (cached for
 * good), and `/console/connected.html`, where the OAuth callback sends the sign-in popup. Every
 * answer carries the console's security headers. Public: the app holds no secret; the API it calls
 * checks the session cookie and the CSRF token. A missing build answers 503 with what to run.
 *
 * @example
 * await createHttpApp({ ..., sitePlugins: [consoleSite()] });
 */
export function consoleSite(options: ConsoleSiteOptions = {}): FastifyPluginAsync {
  return async (site) => {
    const dir = options.dir ?? defaultConsoleDir();
    const read = (name: string): Buffer | undefined => {
      const path = join(dir, name);
      return existsSync(path) ? readFileSync(path) : undefined;
    };
    // Read once: the build is made at install time, not while the server runs.
    const index = read('index.html');
    const connected = read('connected.html');
    if (index === undefined) site.log.warn({ dir }, `The console is not built (no index.html in ${dir}); ${CONSOLE_PATH} answers 503 until it is.`);

    site.addHook('onSend', (_request, reply, payload, done) => {
      consoleHeaders(reply);
      done(null, payload);
    });

    const page = (html: Buffer | undefined) => async (_request: unknown, reply: FastifyReply) => {
      reply.header('cache-control', 'no-store');
      if (html === undefined) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
      return reply.type('text/html; charset=utf-8').send(html);
    };
    const hidden = { schema: { hide: true } };

    site.get('/', hidden, async (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));
    site.get(CONSOLE_PATH, hidden, async (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`, 302));
    site.get(`${CONSOLE_PATH}/`, hidden, page(index));
    site.get(`${CONSOLE_PATH}/*`, hidden, page(index));
    site.get(`${CONSOLE_PATH}/connected.html`, hidden, page(connected));

    const assets = join(dir, 'assets');
    if (existsSync(assets)) {
      await site.register(fastifyStatic, {
        root: assets,
        prefix: `${CONSOLE_PATH}/assets/`,
        decorateReply: false,
        schemaHide: true,
        index: false,
        dotfiles: 'deny',
        // File names carry a hash of their content.
        immutable: true,
        maxAge: '365d',
      });
    }
  };
}
