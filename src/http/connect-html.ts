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
form.fields { display: grid; gap: .5rem; min-width: 14rem; }
form.fields label { display: grid; gap: .2rem; font-size: .9rem; }
form.fields input { font: inherit; padding: .3rem .4rem; }
.hint { font-size: .8rem; opacity: .8; }
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

/** One value the connect page asks of the end user. */
export interface ConnectFormField {
  /** The form field's name: `config.<field>` or `credential.<part>`. */
  name: string;
  label: string;
  /** The provider's description of a config field. */
  hint?: string;
  /** Typed into a masked, never autofilled input. */
  secret: boolean;
  required: boolean;
  maxLength: number;
}

export interface ConnectPageItem {
  id: string;
  name: string;
  /** What the end user reads next to it. */
  status: 'connected' | 'needs_reauthorization' | 'degraded' | 'not_connected';
  /**
   * `oauth`: a Connect button that starts the authorization code flow (after the fields, if any);
   * `credential`: a form for the end user's own credential (api_key, basic, bearer); `none`: not
   * connectable here.
   */
  kind: 'oauth' | 'credential' | 'none';
  /** What the form asks for: the connector's end-user fields, then the credential's parts. */
  fields: readonly ConnectFormField[];
}

export interface ConnectListOptions {
  /** Binds the credential forms to this browser (see the connect routes); required for `credential` items. */
  formToken?: string;
  /** A refusal of the last submission, shown above the list: the connector's id and one sentence (never a value). */
  error?: { connectorId: string; message: string };
}

const STATUS_TEXT: Record<ConnectPageItem['status'], string> = {
  connected: 'Connected',
  needs_reauthorization: 'Needs reconnecting',
  degraded: 'Connected; the provider is having trouble',
  not_connected: 'Not connected',
};

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;
}

/** A labelled input; never prefilled, so no submitted value comes back into the page. */
function input(field: ConnectFormField, id: string): string {
  const type = field.secret ? 'password' : 'text';
  const hint = field.hint ? `<span class="hint">${escapeHtml(field.hint)}</span>` : '';
  const required = field.required ? ' required' : '';
  return `<label for="${escapeHtml(id)}">${escapeHtml(field.label)}${hint}<input id="${escapeHtml(id)}" type="${type}" name="${escapeHtml(field.name)}" maxlength="${field.maxLength}" autocomplete="off" spellcheck="false"${required}></label>`;
}

function action(session: string, item: ConnectPageItem, formToken: string | undefined): string {
  const label = item.status === 'not_connected' ? 'Connect' : 'Reconnect';
  const button = `<button type="submit" aria-label="${escapeHtml(`${label} ${item.name}`)}">${label}</button>`;
  const base = `${hidden('session', session)}${hidden('connector', item.id)}`;
  const inputs = item.fields.map((field, index) => input(field, `f-${item.id}-${index}`)).join('');
  const token = formToken === undefined ? '' : hidden('form_token', formToken);
  if (item.kind === 'oauth') {
    if (item.fields.length === 0) return `<form method="post" action="/connect/start">${base}${token}${button}</form>`;
    return `<form class="fields" method="post" action="/connect/start">${base}${token}${inputs}${button}</form>`;
  }
  if (item.kind === 'credential' && formToken !== undefined) {
    return `<form class="fields" method="post" action="/connect/credentials">${base}${hidden('form_token', formToken)}${inputs}${button}</form>`;
  }
  return '<span class="status">Set up by the application</span>';
}

/** The list of connectors with a Connect button or form each (forms: works without script). */
export function connectListPage(session: string, displayName: string | null, items: readonly ConnectPageItem[], options: ConnectListOptions = {}): string {
  const greeting = displayName ? `<p>Signed in as ${escapeHtml(displayName)}.</p>` : '';
  if (items.length === 0) {
    return page('Connect your accounts', `${greeting}<p>There is nothing to connect here. Ask the application that sent you.</p>`);
  }
  const failed = options.error ? items.find((item) => item.id === options.error?.connectorId) : undefined;
  const error = options.error ? `<p class="error" role="alert">${failed ? `${escapeHtml(failed.name)}: ` : ''}${escapeHtml(options.error.message)}</p>` : '';
  const rows = items.map(
    (item) => `<li><div><strong>${escapeHtml(item.name)}</strong><br><span class="status">${STATUS_TEXT[item.status]}</span></div>${action(session, item, options.formToken)}</li>`,
  );
  return page('Connect your accounts', `${greeting}${error}<ul>${rows.join('')}</ul>`);
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
