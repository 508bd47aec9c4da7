// Every call the console makes to Latchkey: same origin, the session cookie, JSON, and the CSRF
// token (the latchkey_csrf cookie, set at login) on every request that changes something.

const PREFIX = '/api/v1';
const CSRF_COOKIE = 'latchkey_csrf';
const CSRF_HEADER = 'X-Latchkey-CSRF';

export interface FieldError {
  path: string;
  message: string;
}

/** An error answer of the API, or no answer at all (`network`). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly fields: FieldError[];
  readonly requestId: string | undefined;

  constructor(code: string, message: string, status: number, fields: FieldError[] = [], requestId?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.fields = fields;
    this.requestId = requestId;
  }

  /** The message of the field at `path`, if the API named it. */
  field(path: string): string | undefined {
    return this.fields.find((f) => f.path === path)?.message;
  }
}

let onUnauthorized: () => void = () => {};

/** What to do when the session is gone (a 401 on any call but the login itself). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

function cookie(name: string): string | undefined {
  for (const pair of document.cookie.split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) return decodeURIComponent(pair.slice(at + 1).trim());
  }
  return undefined;
}

/** True when this browser holds a console session (its CSRF cookie; the session cookie is HttpOnly). */
export function hasSession(): boolean {
  return cookie(CSRF_COOKIE) !== undefined;
}

function isErrorBody(value: unknown): value is { error: { code: string; message: string; requestId?: string; details?: { fields?: FieldError[] } } } {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
}

/**
 * Calls the API: `api('GET', '/me')`. Resolves with the JSON body (undefined for 204); rejects
 * with an {@link ApiError} carrying the API's code, sentence and field errors.
 */
export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') {
    const token = cookie(CSRF_COOKIE);
    if (token !== undefined) headers[CSRF_HEADER] = token;
  }
  let res: Response;
  try {
    res = await fetch(`${PREFIX}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError('network', 'Latchkey could not be reached; check that the server is running and try again.', 0);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.ok) return json as T;
  if (res.status === 401 && path !== '/sessions') onUnauthorized();
  if (isErrorBody(json)) {
    const { code, message, requestId, details } = json.error;
    throw new ApiError(code, message, res.status, Array.isArray(details?.fields) ? details.fields : [], requestId);
  }
  throw new ApiError('internal_error', `Latchkey answered ${res.status} without an explanation; try again.`, res.status);
}

/** Every item of a paged list (`next` passed back as `after`). */
export async function listAll<T>(path: string): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page = await api<{ items: T[]; next?: string }>('GET', after === undefined ? path : `${path}${separator}after=${encodeURIComponent(after)}`);
    items.push(...page.items);
    after = page.next;
  } while (after !== undefined);
  return items;
}

/** Any failure as an {@link ApiError} (a bug in the console becomes a sentence, not a blank page). */
export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError('internal_error', 'That did not work; reload the page and try again.', 0);
}

/** A query string of the values that are set: `query({ a: 'x', b: '' })` is `?a=x`. */
export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
