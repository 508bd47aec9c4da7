import type { FastifyReply } from 'fastify';
import { escapeHtml, pageHeaders } from './result-page.js';

/** The connect page's one style sheet and one script, served by Latchkey itself (no CDN, no inline code). */
export const CONNECT_ASSETS = {
  'connect.css': {
    type: 'text/css; charset=utf-8',
    body: `:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0; display: flex; justify-content: center; }
main { max-width: 32rem; width: 100%; padding: 2rem 1rem; }
h1 { font-size: 1.4rem; }
ul { list-style: none; padding: 0; }
li { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .75rem 0; border-bottom: 1px solid #8884; }
.status { font-size: .85rem; opacity: .8; }
button { font: inherit; padding: .4rem .9rem; cursor: pointer; }
.error { color: #b00020; }
`,
  },
  'connect.js': {
    type: 'text/javascript; charset=utf-8',
    // Tells the window that opened the page how connecting went, and only windows of the
    // session's allowed origins (postMessage delivers nothing to any other origin).
    body: `(() => {
  const outcome = document.getElementById('outcome');
  if (!outcome || !window.opener) return;
  const result = JSON.parse(outcome.dataset.result || 'null');
  const origins = JSON.parse(outcome.dataset.origins || '[]');
  for (const origin of origins) window.opener.postMessage(result, origin);
})();
`,
  },
} as const;

export type ConnectAssetName = keyof typeof CONNECT_ASSETS;

function page(title: string, body: string, script = false): string {
  const t = escapeHtml(title);
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${t} - Latchkey</title><link rel="stylesheet" href="/connect/assets/connect.css"></head>`,
    `<body><main><h1>${t}</h1>${body}</main>${script ? '<script src="/connect/assets/connect.js"></script>' : ''}</body>`,
    '</html>',
    '',
  ].join('\n');
}

export interface ConnectPageItem {
  id: string;
  name: string;
  /** What the end user reads next to it. */
  status: 'connected' | 'needs_reauthorization' | 'degraded' | 'not_connected';
  /** False for connectors this page cannot connect (no authorization code flow). */
  connectable: boolean;
}

const STATUS_TEXT: Record<ConnectPageItem['status'], string> = {
  connected: 'Connected',
  needs_reauthorization: 'Needs reconnecting',
  degraded: 'Connected; the provider is having trouble',
  not_connected: 'Not connected',
};

/** The list of connectors with a Connect button each (a form: works without script). */
export function connectListPage(session: string, displayName: string | null, items: readonly ConnectPageItem[]): string {
  const greeting = displayName ? `<p>Signed in as ${escapeHtml(displayName)}.</p>` : '';
  if (items.length === 0) {
    return page('Connect your accounts', `${greeting}<p>There is nothing to connect here. Ask the application that sent you.</p>`);
  }
  const rows = items.map((item) => {
    const label = item.status === 'not_connected' ? 'Connect' : 'Reconnect';
    const action = item.connectable
      ? `<form method="post" action="/connect/start"><input type="hidden" name="session" value="${escapeHtml(session)}"><input type="hidden" name="connector" value="${escapeHtml(item.id)}"><button type="submit" aria-label="${escapeHtml(`${label} ${item.name}`)}">${label}</button></form>`
      : '<span class="status">Set up by the application</span>';
    return `<li><div><strong>${escapeHtml(item.name)}</strong><br><span class="status">${STATUS_TEXT[item.status]}</span></div>${action}</li>`;
  });
  return page('Connect your accounts', `${greeting}<ul>${rows.join('')}</ul>`);
}

/** A page that says what went wrong, in words (provider text escaped). */
export function connectErrorPage(message: string): string {
  return page('Connecting failed', `<p class="error">${escapeHtml(message)}</p>`);
}

export interface ConnectOutcome {
  type: 'latchkey:connect';
  ok: boolean;
  connectorId: string | null;
  endUserId: string | null;
  /** The failure code (`provider_error`, `browser_mismatch`...) when not ok. */
  error?: string;
  /** The provider's own error code, when it sent one (`access_denied`...). */
  providerError?: string;
  message: string;
}

/** The page the OAuth callback shows for a connect session: the outcome in words, posted to the opener. */
export function connectOutcomePage(outcome: ConnectOutcome, origins: readonly string[]): string {
  const title = outcome.ok ? 'Account connected' : 'Connecting failed';
  const text = `<p${outcome.ok ? '' : ' class="error"'}>${escapeHtml(outcome.message)}</p><p>You can close this window.</p>`;
  const data = `<div id="outcome" data-result="${escapeHtml(JSON.stringify(outcome))}" data-origins="${escapeHtml(JSON.stringify(origins))}"></div>`;
  return page(title, `${text}${data}`, true);
}

/** Headers of every connect page: never cached or framed, no Referer, nothing loaded but its own assets. */
export function connectHeaders(reply: FastifyReply): FastifyReply {
  return pageHeaders(reply, "default-src 'none'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'");
}
