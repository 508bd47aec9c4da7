// A real authorization server for OAuth tests: oidc-provider on 127.0.0.1 (a random port) in the
// test process, with an in-memory adapter of its own (no eviction, nothing shared between
// instances), refresh-token rotation on, revocation, introspection, client credentials and the
// provider's dev interactions (login and consent pages a test can drive with fetch).
//
// Rotation is what makes the refresh tests mean something: a consumed refresh token presented again
// makes oidc-provider revoke the whole grant, so any double refresh shows up as a revoked grant.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface TestClient {
  clientId: string;
  clientSecret: string;
  authMethod: 'client_secret_basic' | 'client_secret_post';
  /** False for the client whose refresh responses carry no refresh token (rotation off). */
  rotatesRefreshTokens: boolean;
}

export interface ProviderCounters {
  /** Every POST to the token endpoint, whatever the outcome (also when down, slow or garbage). */
  token: number;
  /** Token endpoint calls by grant type (also counted when the provider refused them). */
  refresh: number;
  clientCredentials: number;
  authorizationCode: number;
  /** POSTs to the revocation endpoint. */
  revocation: number;
  /** Grants revoked by the provider: by revocation, or by the reuse of a consumed refresh token. */
  grantsRevoked: number;
}

export type GarbageKind = 'not_json' | 'missing_access_token';

export interface MintedGrant {
  grantId: string;
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  scope: string;
}

export interface TestProvider {
  /** `http://127.0.0.1:<port>`: also the base of every endpoint. */
  issuer: string;
  authorizationUrl: string;
  tokenUrl: string;
  revocationUrl: string;
  introspectionUrl: string;
  /** `basic` and `post` rotate refresh tokens; `noRotation` keeps them and answers refreshes without one. */
  clients: { basic: TestClient; post: TestClient; noRotation: TestClient };
  counters: ProviderCounters;
  /**
   * A grant with an access token and a refresh token, created through the provider's own models
   * (no browser login): what an authorization code exchange would have produced.
   */
  mintGrant(options: { accountId: string; scope?: string; expiresIn?: number; client?: TestClient }): Promise<MintedGrant>;
  /**
   * Plays the user in a browser: follows an authorization URL through the provider's dev
   * interactions (login as `accountId`, then consent; or `deny` at the first page) and returns the
   * URL the provider redirects to on the client's side (the callback, with `code` and `state`, or
   * `error`). Cookies are kept per call, so every call is a new browser.
   */
  signIn(authorizationUrl: string, options: { accountId: string; deny?: boolean }): Promise<URL>;
  /** Revokes a grant at the provider (as a user removing the app would): its tokens stop working. */
  revokeGrant(grantId: string): Promise<void>;
  /** RFC 7662 introspection with the token's client: is the token active? */
  introspect(token: string, client?: TestClient): Promise<boolean>;
  /** The token endpoint answers 503 (plain text) while down; nothing reaches the provider. */
  setDown(down: boolean): void;
  /**
   * Token requests wait this long before the provider sees them; one whose client gave up meanwhile
   * is dropped unprocessed (like a request stuck in a queue), so a timed-out refresh consumes nothing.
   * The wait ends early when the client closes the connection, so a test may hold requests for
   * minutes (a hang) without keeping the process alive.
   */
  setSlow(ms: number): void;
  /** The token endpoint answers 200 with a body that is not a token response (true: not JSON). */
  setGarbage(kind: boolean | GarbageKind): void;
  resetCounters(): void;
  /** The oidc-provider instance, for what this harness does not wrap (its Koa app, its models). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  provider: any;
  stop(): Promise<void>;
}

export interface StartProviderOptions {
  /** Redirect URIs registered for every client (the authorization code flow needs its callback). */
  redirectUris?: string[];
  /** Access token lifetime in seconds for tokens the provider issues (default 3600). */
  accessTokenTtl?: number;
  /** Scopes the provider knows beyond openid and offline_access (default api:read, api:write). */
  scopes?: string[];
}

// oidc-provider ships no type declarations; the few parts used here are typed locally.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Payload = Record<string, any>;
type KoaContext = {
  method: string;
  path: string;
  status: number;
  body: unknown;
  type: string;
  req: IncomingMessage;
  set(name: string, value: string): void;
  oidc?: { params?: Record<string, unknown>; client?: { clientId: string } };
};
type Next = () => Promise<void>;

const epoch = () => Math.floor(Date.now() / 1000);

/** One storage per provider instance: the package's own memory adapter is a process-wide LRU of 1,000 entries. */
function memoryAdapter() {
  const storage = new Map<string, { payload: Payload; expiresAt: number | undefined }>();
  const byGrant = new Map<string, Set<string>>();
  const index = new Map<string, string>();
  const live = (key: string) => {
    const entry = storage.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      storage.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MemoryAdapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    #key(id: string) {
      return `${this.#model}:${id}`;
    }
    async upsert(id: string, payload: Payload, expiresIn: number | undefined) {
      const key = this.#key(id);
      storage.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
      if (typeof payload['grantId'] === 'string') {
        const keys = byGrant.get(payload['grantId']) ?? new Set<string>();
        keys.add(key);
        byGrant.set(payload['grantId'], keys);
      }
      if (typeof payload['uid'] === 'string') index.set(`uid:${this.#model}:${payload['uid']}`, id);
      if (typeof payload['userCode'] === 'string') index.set(`userCode:${this.#model}:${payload['userCode']}`, id);
    }
    async find(id: string) {
      return live(this.#key(id));
    }
    async findByUid(uid: string) {
      const id = index.get(`uid:${this.#model}:${uid}`);
      return id === undefined ? undefined : live(this.#key(id));
    }
    async findByUserCode(userCode: string) {
      const id = index.get(`userCode:${this.#model}:${userCode}`);
      return id === undefined ? undefined : live(this.#key(id));
    }
    async consume(id: string) {
      const payload = live(this.#key(id));
      if (payload) payload['consumed'] = epoch();
    }
    async destroy(id: string) {
      storage.delete(this.#key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const key of byGrant.get(grantId) ?? []) storage.delete(key);
      byGrant.delete(grantId);
    }
  };
}

function newClient(name: string, authMethod: TestClient['authMethod'], rotatesRefreshTokens: boolean): TestClient {
  return {
    clientId: `${name}-${randomBytes(4).toString('hex')}`,
    clientSecret: randomBytes(24).toString('base64url'),
    authMethod,
    rotatesRefreshTokens,
  };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function countGrant(counters: ProviderCounters, grantType: unknown): void {
  if (grantType === 'refresh_token') counters.refresh++;
  else if (grantType === 'client_credentials') counters.clientCredentials++;
  else if (grantType === 'authorization_code') counters.authorizationCode++;
}

/** Waits `ms`, or less when the client closes the connection first (a slow mode may hold a request for minutes). */
function heldFor(req: IncomingMessage, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      req.socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    req.socket.once('close', done);
  });
}

/**
 * Starts the provider and waits until it listens.
 *
 * @example
 * const op = await startOidcProvider();
 * const { refreshToken } = await op.mintGrant({ accountId: 'alice' });
 * // ...point a connector at op.tokenUrl with op.clients.basic, refresh, then:
 * assert.equal(op.counters.refresh, 1);
 * await op.stop();
 */
export async function startOidcProvider(options: StartProviderOptions = {}): Promise<TestProvider> {
  // A non-literal specifier: oidc-provider has no types, and it is loaded only where tests run.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: Payload) => any };

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const clients = {
    basic: newClient('latchkey-basic', 'client_secret_basic', true),
    post: newClient('latchkey-post', 'client_secret_post', true),
    noRotation: newClient('latchkey-norotate', 'client_secret_basic', false),
  };
  const redirectUris = options.redirectUris ?? ['http://127.0.0.1/callback'];
  const counters: ProviderCounters = { token: 0, refresh: 0, clientCredentials: 0, authorizationCode: 0, revocation: 0, grantsRevoked: 0 };
  const mode: { down: boolean; slowMs: number; garbage: GarbageKind | undefined } = { down: false, slowMs: 0, garbage: undefined };

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    clients: Object.values(clients).map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      token_endpoint_auth_method: c.authMethod,
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      scope: ['openid', 'offline_access', ...(options.scopes ?? ['api:read', 'api:write'])].join(' '),
    })),
    scopes: ['openid', 'offline_access', ...(options.scopes ?? ['api:read', 'api:write'])],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      // Only a token's own client learns about it.
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      clientCredentials: { enabled: true },
    },
    pkce: { required: () => true, methods: ['S256'] },
    // Every code exchange of a client allowed to refresh gets a refresh token, offline_access or not.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: (ctx: KoaContext) => ctx.oidc?.client?.clientId !== clients.noRotation.clientId,
    ttl: {
      AccessToken: (_ctx: unknown, token: { expiresIn?: number }) => token.expiresIn ?? options.accessTokenTtl ?? 3600,
      ClientCredentials: options.accessTokenTtl ?? 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 3600,
      Interaction: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
    },
  });
  provider.on('grant.revoked', () => {
    counters.grantsRevoked++;
  });

  provider.use(async (ctx: KoaContext, next: Next) => {
    if (ctx.method === 'POST' && ctx.path === '/token/revocation') counters.revocation++;
    if (ctx.method !== 'POST' || ctx.path !== '/token') return next();
    counters.token++;
    if (mode.slowMs > 0) {
      await heldFor(ctx.req, mode.slowMs);
      if (ctx.req.destroyed || ctx.req.socket.destroyed) {
        // The client gave up meanwhile: nothing is processed.
        ctx.status = 503;
        return;
      }
    }
    if (mode.down || mode.garbage) {
      countGrant(counters, (await readForm(ctx.req)).get('grant_type'));
      if (mode.down) {
        ctx.status = 503;
        ctx.type = 'text/plain';
        ctx.body = 'Service Unavailable';
      } else if (mode.garbage === 'not_json') {
        ctx.status = 200;
        ctx.type = 'text/html';
        ctx.body = '<html><body>Oops, a proxy error page</body></html>';
      } else {
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = { token_type: 'Bearer', expires_in: 3600 };
      }
      return;
    }
    await next();
    countGrant(counters, ctx.oidc?.params?.['grant_type']);
    // The no-rotation client stands for providers that answer a refresh without a refresh token.
    const body = ctx.body as Payload | undefined;
    if (ctx.oidc?.params?.['grant_type'] === 'refresh_token' && ctx.oidc.client?.clientId === clients.noRotation.clientId && body) {
      delete body['refresh_token'];
    }
  });

  handler = provider.callback();

  async function clientInstance(client: TestClient) {
    const found = await provider.Client.find(client.clientId);
    if (!found) throw new Error(`No client ${client.clientId}.`);
    return found;
  }

  return {
    issuer,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    revocationUrl: `${issuer}/token/revocation`,
    introspectionUrl: `${issuer}/token/introspection`,
    clients,
    counters,
    provider,
    async mintGrant({ accountId, scope = 'openid offline_access api:read', expiresIn = 3600, client = clients.basic }) {
      const instance = await clientInstance(client);
      const grant = new provider.Grant({ accountId, clientId: client.clientId });
      grant.addOIDCScope(scope);
      const grantId: string = await grant.save();
      const at = new provider.AccessToken({ accountId, client: instance, grantId, scope, gty: 'authorization_code', expiresIn });
      const accessToken: string = await at.save();
      const rt = new provider.RefreshToken({ accountId, client: instance, grantId, scope, gty: 'authorization_code' });
      const refreshToken: string = await rt.save();
      return { grantId, accessToken, refreshToken, expiresIn, scope };
    },
    async signIn(authorizationUrl, { accountId, deny = false }) {
      const jar = new Map<string, string>();
      const cookie = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const keep = (res: Response) => {
        for (const line of res.headers.getSetCookie()) {
          const [pair = ''] = line.split(';');
          const eq = pair.indexOf('=');
          const name = pair.slice(0, eq).trim();
          const value = pair.slice(eq + 1).trim();
          if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
          else jar.set(name, value);
        }
      };
      let url = new URL(authorizationUrl);
      for (let step = 0; step < 20; step++) {
        if (url.origin !== issuer) return url;
        const res = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
        keep(res);
        const location = res.headers.get('location');
        if (res.status >= 300 && res.status < 400 && location) {
          url = new URL(location, url);
          continue;
        }
        const html = await res.text();
        const prompt = /name="prompt" value="(login|consent)"/.exec(html)?.[1];
        if (res.status !== 200 || prompt === undefined) throw new Error(`The provider answered ${res.status} at ${url.pathname}: ${html.slice(0, 300)}`);
        if (deny) {
          url = new URL(`${url.pathname}/abort`, issuer);
          continue;
        }
        const form = new URLSearchParams(prompt === 'login' ? { prompt, login: accountId, password: 'any' } : { prompt });
        const submitted = await fetch(url, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
          body: form,
        });
        keep(submitted);
        const next = submitted.headers.get('location');
        if (!next) throw new Error(`The provider answered ${submitted.status} to the ${prompt} form.`);
        url = new URL(next, url);
      }
      throw new Error('Too many redirects while signing in.');
    },
    async revokeGrant(grantId) {
      const grant = await provider.Grant.find(grantId);
      await grant?.destroy();
      await Promise.all(
        ['AccessToken', 'RefreshToken', 'AuthorizationCode'].map((model) => provider[model].adapter.revokeByGrantId(grantId)),
      );
    },
    async introspect(token, client = clients.basic) {
      const body = new URLSearchParams({ token });
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (client.authMethod === 'client_secret_post') {
        body.set('client_id', client.clientId);
        body.set('client_secret', client.clientSecret);
      } else {
        const user = encodeURIComponent(client.clientId);
        const pass = encodeURIComponent(client.clientSecret);
        headers['authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      }
      const res = await fetch(`${issuer}/token/introspection`, { method: 'POST', headers, body });
      if (res.status !== 200) throw new Error(`Introspection answered ${res.status}.`);
      return ((await res.json()) as { active: boolean }).active === true;
    },
    setDown(down) {
      mode.down = down;
    },
    setSlow(ms) {
      mode.slowMs = ms;
    },
    setGarbage(kind) {
      mode.garbage = kind === true ? 'not_json' : kind === false ? undefined : kind;
    },
    resetCounters() {
      for (const name of Object.keys(counters) as (keyof ProviderCounters)[]) counters[name] = 0;
    },
    async stop() {
      handler = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
