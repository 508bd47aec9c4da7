import { LatchkeyError } from '../core/index.js';

/** One request to Latchkey's own HTTP API in this process (the Fastify app's `inject`). */
export interface TaskApiRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export type TaskApi = (request: TaskApiRequest) => Promise<{ statusCode: number; headers: Record<string, string | string[] | number | undefined>; rawPayload: Buffer }>;

/** What a run as a user is given: Latchkey's API, authenticated with the task's own key. */
export interface TaskLatchkeyClient {
  /**
   * A request to Latchkey's HTTP API (`/api/v1/...`) as the task's user, through the same
   * authentication, permission checks and audit as any caller. A task that runs as an end user
   * sends `Latchkey-End-User` with it, so `/token` and the proxy use that end user's connection.
   *
   * @example
   * const res = await latchkey.fetch('/api/v1/connectors/github/proxy/user', { signal });
   * const profile = await res.json();
   */
  fetch(path: string, init?: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; signal?: AbortSignal }): Promise<Response>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** The client for one run: `key` authenticates every request; `endUserId` picks the end user's connections. */
export function taskApiClient(api: TaskApi, key: string, endUserId: string | undefined): TaskLatchkeyClient {
  return {
    async fetch(path, init = {}) {
      if (typeof path !== 'string' || !path.startsWith('/api/v1/')) throw new TypeError('A task calls Latchkey\'s own API: the path must start with /api/v1/.');
      init.signal?.throwIfAborted();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(init.headers ?? {})) {
        const lower = name.toLowerCase();
        if (lower === 'authorization' || lower === 'cookie') continue;
        headers[lower] = value;
      }
      if (endUserId !== undefined && headers['latchkey-end-user'] === undefined) headers['latchkey-end-user'] = endUserId;
      headers['authorization'] = `ApiKey ${key}`;
      // Not inject's own ("lightMyRequest"): a provider reached through the proxy sees who called.
      headers['user-agent'] ??= 'latchkey-task';
      const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(init.body);
      const res = await api({ method: init.method ?? 'GET', url: path, headers, ...(body !== undefined ? { body } : {}) });
      const out = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue;
        for (const one of Array.isArray(value) ? value : [String(value)]) out.append(name, one);
      }
      const empty = res.statusCode === 204 || res.statusCode === 304 || (init.method ?? 'GET').toUpperCase() === 'HEAD';
      if (res.statusCode < 200 || res.statusCode > 599) throw new LatchkeyError('internal_error', 'Latchkey answered a task with an invalid status.');
      return new Response(empty ? null : new Uint8Array(res.rawPayload), { status: res.statusCode, headers: out });
    },
  };
}
