import { z } from 'zod';
import { LatchkeyError, newId, systemClock, type Clock } from '../../core/index.js';
import { signedHeaders } from '../../webhooks/index.js';
import type { ExternalCredentialIssuer } from './types.js';

export interface HttpCredentialIssuerOptions {
  /** The issuer's base URL: Latchkey POSTs to `<url>/grant` and `<url>/invalidate`. */
  url: string;
  /** Shared secret (`whsec_` + base64): every request is signed with it as Standard Webhooks specifies. */
  secret: string;
  /** The outbound-HTTP module's fetch (egress policy, timeouts, size limits). */
  fetch: typeof fetch;
  clock?: Clock;
}

const grantAnswer = z.object({
  secret: z.string().min(1).max(16_384),
  expiresAt: z.iso.datetime({ offset: true }).nullable().optional(),
});

/**
 * An external credential issuer reached over HTTP. Requests are JSON, signed with the shared
 * secret in the `webhook-id` / `webhook-timestamp` / `webhook-signature` headers (verify them
 * with any Standard Webhooks library):
 *
 * - `POST <url>/grant` `{reference, tenantId, taskId, taskType, userId, endUserId?}` answers
 *   `200 {secret, expiresAt?}`. The same reference may come twice (a retried grant): answer the
 *   same credential or a new one.
 * - `POST <url>/invalidate` `{reference, tenantId}` answers any 2xx, or 404 for a reference it
 *   never granted; anything else is retried later.
 *
 * @example
 * const issuer = createHttpCredentialIssuer({ url: 'https://issuer.internal', secret: 'whsec_…', fetch: outbound.fetch });
 */
export function createHttpCredentialIssuer(options: HttpCredentialIssuerOptions): ExternalCredentialIssuer {
  const clock = options.clock ?? systemClock;
  const base = options.url.replace(/\/+$/, '');
  if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) throw new TypeError('The credential issuer URL must be an absolute http(s) URL.');

  async function post(path: '/grant' | '/invalidate', payload: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Response> {
    const body = JSON.stringify(payload);
    const headers = { 'content-type': 'application/json', ...signedHeaders([options.secret], newId('msg'), clock.now(), body) };
    try {
      return await options.fetch(`${base}${path}`, { method: 'POST', headers, body, redirect: 'error', ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof LatchkeyError) throw err;
      throw new LatchkeyError('issuer_unavailable', 'The credential issuer could not be reached.', { cause: err });
    }
  }

  return {
    async grant(request) {
      const { signal, ...payload } = request;
      const res = await post('/grant', payload, signal);
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new LatchkeyError('issuer_unavailable', `The credential issuer answered the grant with status ${res.status}.`);
      }
      let parsed: z.infer<typeof grantAnswer>;
      try {
        parsed = grantAnswer.parse(await res.json());
      } catch (err) {
        throw new LatchkeyError('issuer_unavailable', 'The credential issuer answered the grant without a valid {secret, expiresAt?} body.', { cause: err });
      }
      return { secret: parsed.secret, expiresAt: parsed.expiresAt ?? null };
    },
    async invalidate(request) {
      const { signal, ...payload } = request;
      const res = await post('/invalidate', payload, signal);
      await res.body?.cancel();
      if ((res.status >= 200 && res.status < 300) || res.status === 404) return;
      throw new LatchkeyError('issuer_unavailable', `The credential issuer answered the invalidation with status ${res.status}.`);
    },
  };
}
