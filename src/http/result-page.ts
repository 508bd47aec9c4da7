import type { FastifyReply } from 'fastify';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text made safe to place in HTML element content or a quoted attribute.
 *
 * @example
 * escapeHtml('<script>alert("x")</script>'); // '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);
}

/**
 * A plain HTML page of one heading and one sentence, both escaped here (callers pass plain text,
 * provider text included). No script, style sheet or image: the page loads nothing.
 *
 * @example
 * resultPage('Account connected', 'You can close this window.');
 */
export function resultPage(title: string, message: string): string {
  const t = escapeHtml(title);
  return [
    '<!doctype html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${t} - Latchkey</title></head>`,
    `<body><main><h1>${t}</h1><p>${escapeHtml(message)}</p></main></body>`,
    '</html>',
    '',
  ].join('\n');
}

/**
 * Headers for answers of the OAuth callback: never cached, never framed, loading nothing, and no
 * Referer (the callback URL carries the authorization code).
 */
export function callbackHeaders(reply: FastifyReply): FastifyReply {
  return pageHeaders(reply, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
}

/** Headers of every page Latchkey serves outside the console: never cached or framed, no Referer, this CSP. */
export function pageHeaders(reply: FastifyReply, contentSecurityPolicy: string): FastifyReply {
  return reply
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', contentSecurityPolicy);
}
