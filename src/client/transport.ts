import createClient, { defaultPathSerializer, type Client } from 'openapi-fetch';
import { LatchkeyApiError, LatchkeyNetworkError, latchkeyErrorOf } from './errors.js';
import type { operations, paths } from './openapi.js';

/** `new LatchkeyClient(options)`. */
export interface LatchkeyClientOptions {
  /** Latchkey's public URL, e.g. `https://latchkey.example.com`. */
  baseUrl: string;
  /** An API key (`lk_…`), sent as `Authorization: ApiKey <key>`. */
  apiKey: string;
  /** The fetch to send requests with (default `globalThis.fetch`). */
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * Whose connection a call uses, on a per-user connector: a Latchkey user (`user`, their id;
 * another user than the caller needs `identity:admin`) or an application's end user
 * (`endUserId`, sent as `Latchkey-End-User`). Neither: the caller's own, or the shared connection.
 */
export interface ConnectionOwner {
  user?: string;
  endUserId?: string;
}

type OperationId = keyof operations;
/** The JSON request body of an operation. */
export type BodyOf<K extends OperationId> = operations[K] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
/** The query parameters of an operation. */
export type QueryOf<K extends OperationId> = NonNullable<operations[K]['parameters']['query']>;

/** The data of a successful openapi-fetch result. */
type DataOf<R> = R extends { data?: infer D } ? Exclude<D, undefined> : never;

/**
 * What every resource group calls through: the typed openapi-fetch client (with the key) and
 * `send`, which answers the data or throws a {@link LatchkeyApiError} / {@link LatchkeyNetworkError}.
 */
export interface Transport {
  readonly http: Client<paths>;
  /** `baseUrl` without its trailing slashes. */
  readonly baseUrl: string;
  /** Sends a raw request with the key (the proxy, whose path openapi-fetch would encode). */
  fetch(path: string, init: RequestInit): Promise<Response>;
  send<R extends { response: Response }>(pending: Promise<R>): Promise<DataOf<R>>;
  /** The query (`user`) and headers (`Latchkey-End-User`) that name a connection's owner. */
  owner(owner: ConnectionOwner | undefined): { query: { user?: string }; headers: Record<string, string> };
}

function assertOptions(options: LatchkeyClientOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('"options" must be an object.');
  if (typeof options.baseUrl !== 'string' || !URL.canParse(options.baseUrl)) throw new TypeError('"options.baseUrl" must be an absolute URL.');
  if (typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw new TypeError('"options.apiKey" must be a non-empty string.');
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('"options.fetch" must be a function.');
}

/** A caller's mistake (STYLE: a TypeError), thrown before anything is sent. */
class ArgumentError extends TypeError {}

/**
 * Path parameters as openapi-fetch writes them, refusing an empty id and `.` or `..`: a URL
 * parser would resolve those, so `connectors.get('')` would read the list and `'..'` another route.
 */
function pathOf(pathname: string, params: Record<string, unknown>): string {
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
      throw new ArgumentError(`"${name}" must be a non-empty string other than "." and "..".`);
    }
  }
  return defaultPathSerializer(pathname, params);
}

/** A Latchkey error body becomes a LatchkeyApiError; any other failed answer, a LatchkeyNetworkError. */
export function errorFor(response: Response, body: unknown, baseUrl: string): Error {
  const error = latchkeyErrorOf(body);
  if (error) return new LatchkeyApiError(response.status, error);
  return new LatchkeyNetworkError(`${baseUrl} answered ${response.status} without a Latchkey error body.`, { status: response.status });
}

/**
 * @example
 * const transport = createTransport({ baseUrl: 'https://latchkey.example.com', apiKey });
 * const me = await transport.send(transport.http.GET('/api/v1/me'));
 */
export function createTransport(options: LatchkeyClientOptions): Transport {
  assertOptions(options);
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const send = options.fetch ?? ((input: Request) => globalThis.fetch(input));
  // Kept in this closure only: never a property that a log line or `inspect` could show.
  const authorization = `ApiKey ${options.apiKey}`;
  const http = createClient<paths>({ baseUrl, fetch: send, headers: { authorization }, pathSerializer: pathOf });
  const unreachable = (err: unknown) =>
    new LatchkeyNetworkError(`Could not reach Latchkey at ${baseUrl}${err instanceof Error ? ` (${err.message})` : ''}.`, { cause: err });

  return {
    http,
    baseUrl,
    async fetch(path, init) {
      const headers = new Headers(init.headers);
      headers.set('authorization', authorization);
      const request = new Request(`${baseUrl}${path}`, {
        ...init,
        headers,
        // A streamed body needs it (Node's fetch refuses one otherwise).
        ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
      try {
        return await send(request);
      } catch (err) {
        // The caller's own abort stays what it is.
        if (init.signal?.aborted) throw err;
        throw unreachable(err);
      }
    },
    async send(pending) {
      let result: { data?: unknown; error?: unknown; response: Response };
      try {
        result = await pending;
      } catch (err) {
        // The request could not be sent, or its answer not read; a caller's mistake stays one.
        if (err instanceof ArgumentError) throw err;
        throw unreachable(err);
      }
      if (!result.response.ok) throw errorFor(result.response, result.error, baseUrl);
      return result.data as never;
    },
    owner(owner) {
      if (owner?.user !== undefined && owner.endUserId !== undefined) throw new ArgumentError('Give "user" or "endUserId", not both.');
      const query: { user?: string } = {};
      const headers: Record<string, string> = {};
      if (owner?.user !== undefined) query.user = owner.user;
      if (owner?.endUserId !== undefined) headers['latchkey-end-user'] = owner.endUserId;
      return { query, headers };
    },
  };
}
