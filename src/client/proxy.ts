import { LatchkeyApiError, latchkeyErrorOf } from './errors.js';
import type { ConnectionOwner, Transport } from './transport.js';

/** `fetch`'s options, plus whose connection to call with and `Latchkey-Retries`. */
export interface ProxyInit extends RequestInit, ConnectionOwner {
  /** Wait out and retry a 429/503 that says `Retry-After`, up to this many times (at most 3). */
  retries?: number;
}

/** Latchkey's own error bodies are small; a bigger error answer is the provider's. */
const OWN_ERROR_LIMIT = 64 * 1024;

/**
 * Whether a failed answer is Latchkey's own refusal (unknown connector, `not_connected`,
 * `egress_refused`, `provider_unavailable`…) rather than the provider's: a Latchkey error body
 * whose request id is the one Latchkey gave this request, which a provider cannot know (unless
 * the caller chose it with its own `x-request-id`, which is forwarded too).
 */
async function ownError(response: Response): Promise<LatchkeyApiError | undefined> {
  if (response.ok || !(response.headers.get('content-type') ?? '').includes('application/json')) return undefined;
  const requestId = response.headers.get('x-request-id');
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (requestId === null || !(length <= OWN_ERROR_LIMIT)) return undefined;
  let body: unknown;
  try {
    body = await response.clone().json();
  } catch {
    return undefined;
  }
  const error = latchkeyErrorOf(body);
  return error && error.requestId === requestId ? new LatchkeyApiError(response.status, error) : undefined;
}

/**
 * Refuses a path with a `.` or `..` segment (also percent-encoded) or a backslash: a URL parser
 * resolves those before the request leaves, so `../../api-keys` would call Latchkey's own API with
 * the application's key instead of the provider's.
 */
function assertProviderPath(path: string): void {
  if (typeof path !== 'string') throw new TypeError('"path" must be a string.');
  const pathname = path.split(/[?#]/, 1)[0] ?? '';
  const dotted = pathname.split('/').some((segment) => {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // Not percent-encoding Latchkey would read as a dot either; the server judges it.
    }
    return decoded === '.' || decoded === '..';
  });
  if (dotted || pathname.includes('\\')) throw new TypeError('"path" must not hold "." or ".." segments or backslashes.');
}

/**
 * `latchkey.proxy(connectorId, path, init)`: a `fetch` through the connector, with its credential
 * (the shared connection's, or the `user`'s or `endUserId`'s). Answers the provider's `Response`
 * as it comes (status, safe headers, streamed body); throws a LatchkeyApiError when Latchkey
 * itself refuses the call.
 *
 * @example
 * const res = await latchkey.proxy(connectorId, '/user/repos?per_page=5', { endUserId: 'u-42' });
 * if (res.ok) console.log(await res.json());
 */
export function proxy(t: Transport) {
  return async (connectorId: string, path: string, init: ProxyInit = {}): Promise<Response> => {
    if (typeof connectorId !== 'string' || connectorId === '' || connectorId === '.' || connectorId === '..') {
      throw new TypeError('"connectorId" must be a non-empty string other than "." and "..".');
    }
    assertProviderPath(path);
    const { user, endUserId, retries, ...request } = init;
    const headers = new Headers(request.headers);
    const owner = t.owner({ ...(user !== undefined ? { user } : {}), ...(endUserId !== undefined ? { endUserId } : {}) });
    for (const [name, value] of Object.entries(owner.headers)) headers.set(name, value);
    if (owner.query.user !== undefined) headers.set('latchkey-user', owner.query.user);
    if (retries !== undefined) headers.set('latchkey-retries', String(retries));
    const response = await t.fetch(`/api/v1/connectors/${encodeURIComponent(connectorId)}/proxy/${path.replace(/^\/+/, '')}`, {
      ...request,
      headers,
    });
    const refused = await ownError(response);
    if (refused) {
      await response.body?.cancel();
      throw refused;
    }
    return response;
  };
}
