import type { Dispatcher } from 'undici';
import { LatchkeyError } from '../core/index.js';

type BodyInit = NonNullable<RequestInit['body']>;

/** Bounds on one outbound request; the proxy and webhook deliveries may set their own. */
export interface OutboundLimits {
  /** Redirects followed, each checked again (default 5). */
  maxRedirects: number;
  /** Request body bytes (default 10 MiB); a larger body is refused with `payload_too_large`. */
  maxRequestBytes: number;
  /** Response body bytes (default 10 MiB); past it reading fails with `response_too_large`. */
  maxResponseBytes: number;
}

export const DEFAULT_LIMITS: OutboundLimits = { maxRedirects: 5, maxRequestBytes: 10 * 1024 * 1024, maxResponseBytes: 10 * 1024 * 1024 };

/** Headers that carry a credential: dropped when a redirect leaves the origin. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** A stream that errors with `error()` once more than `max` bytes went through it. */
function bounded(stream: ReadableStream<Uint8Array>, max: number, error: () => Error): ReadableStream<Uint8Array> {
  let seen = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > max) controller.error(error());
        else controller.enqueue(chunk);
      },
    }),
  );
}

/** The size of a body known before sending, or undefined for a stream. */
function knownSize(body: BodyInit): number | undefined {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof URLSearchParams) return Buffer.byteLength(body.toString());
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size;
  return undefined;
}

/** What a refusal may show of a URL: the host, never a path, query or credential. */
function hostOf(url: URL): string {
  return url.host;
}

/**
 * fetch behind the egress agent: the whole-request timeout, size limits, and redirects followed
 * by hand (a request asking `redirect: 'manual'`, as oauth4webapi does, gets the 3xx itself). Each
 * hop connects through the agent, so the policy is checked after DNS for every one; a hop to
 * another origin drops the credential headers; a hop from https to plain http is refused.
 * Refusals from the connect step surface as the `LatchkeyError` itself, not as "fetch failed".
 */
export function guardedFetch(base: typeof fetch, dispatcher: Dispatcher, timeoutMs: number, limits: OutboundLimits): typeof fetch {
  async function send(url: URL, init: RequestInit): Promise<Response> {
    try {
      return await base(url.href, { ...init, redirect: 'manual', dispatcher } as unknown as RequestInit);
    } catch (err) {
      const cause = err instanceof Error ? err.cause : undefined;
      if (cause instanceof LatchkeyError) throw cause;
      throw err;
    }
  }

  function finish(url: URL, response: Response): Response {
    const length = Number(response.headers.get('content-length') ?? Number.NaN);
    const tooLarge = () => new LatchkeyError('response_too_large', `The answer from ${hostOf(url)} is larger than ${limits.maxResponseBytes} bytes.`);
    if (length > limits.maxResponseBytes) {
      void response.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    const body = response.body && !NULL_BODY_STATUSES.has(response.status) ? bounded(response.body, limits.maxResponseBytes, tooLarge) : null;
    return new Response(body, { status: response.status, statusText: response.statusText, headers: new Headers(response.headers) });
  }

  return async (input, init = {}) => {
    const request = input instanceof Request ? input : undefined;
    let url = new URL(request ? request.url : input);
    let method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers ?? request?.headers);
    let body: BodyInit | null = init.body ?? request?.body ?? null;
    const redirect = init.redirect ?? request?.redirect ?? 'follow';
    const callerSignal = init.signal ?? request?.signal;
    const signal = callerSignal ? AbortSignal.any([callerSignal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);

    let streamed = false;
    if (body !== null) {
      const size = knownSize(body);
      const tooLarge = () => new LatchkeyError('payload_too_large', `The request to ${hostOf(url)} is larger than ${limits.maxRequestBytes} bytes.`);
      if (size !== undefined && size > limits.maxRequestBytes) throw tooLarge();
      if (size === undefined && body instanceof ReadableStream) {
        body = bounded(body as ReadableStream<Uint8Array>, limits.maxRequestBytes, tooLarge);
        streamed = true;
      }
    }

    for (let hop = 0; ; hop++) {
      const response = await send(url, { ...init, method, headers, body, signal, ...(streamed ? { duplex: 'half' } : {}) } as RequestInit);
      const location = response.headers.get('location');
      if (redirect === 'manual' || response.status < 300 || response.status > 399 || response.status === 304 || location === null) return finish(url, response);
      await response.body?.cancel().catch(() => {});
      if (redirect === 'error') throw new TypeError('fetch failed', { cause: new Error(`${hostOf(url)} answered a redirect, which this request refuses.`) });
      if (hop >= limits.maxRedirects) throw new LatchkeyError('provider_unavailable', `The request to ${hostOf(url)} was redirected more than ${limits.maxRedirects} times.`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new LatchkeyError('provider_unavailable', `${hostOf(url)} answered a redirect to a malformed URL.`);
      }
      if (next.protocol !== 'https:' && (next.protocol !== 'http:' || url.protocol === 'https:')) {
        throw new LatchkeyError('egress_refused', `The egress policy refuses the redirect from ${hostOf(url)} to ${next.protocol}//${hostOf(next)}: it leaves https.`);
      }
      if (next.origin !== url.origin) for (const name of CREDENTIAL_HEADERS) headers.delete(name);
      if (response.status === 303 ? method !== 'HEAD' : (response.status === 301 || response.status === 302) && method === 'POST') {
        method = 'GET';
        body = null;
        streamed = false;
        for (const name of BODY_HEADERS) headers.delete(name);
      } else if (streamed) {
        throw new LatchkeyError('provider_unavailable', `${hostOf(url)} answered ${response.status}, which needs the streamed request body sent again.`);
      }
      url = next;
    }
  };
}
