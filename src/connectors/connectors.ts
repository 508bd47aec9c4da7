import { z } from 'zod';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import type { InvalidationBus } from '../db/index.js';
import type { Actor, AuditLog } from '../identity/index.js';
import { defineObjectType, type EncryptedObjectStore, type PlainAttributesOf, type StoredObject } from '../objects/index.js';
import { endUserFieldsOf, resolveProvider, validateEndUserConfig, type Catalog, type ConnectorConfig, type ResolvedProvider } from './catalog.js';
import {
  SECRET_NAMES,
  TOKEN_MODES,
  connectorSecretsOf,
  parseCreateInput,
  parseUpdateInput,
  type ConnectorAttributes,
  type ConnectorSecrets,
  type SecretName,
  type TokenMode,
} from './connectors-input.js';
import { AUTH_TYPES, type AuthType, type ProviderTemplate } from './provider-schema.js';
import { credentialOf, type ConnectorCredential } from './credentials.js';
import { createProviderDirectory, type ProviderDirectory } from './provider-directory.js';
import { ResolvedConnectorCache } from './resolved-cache.js';

/**
 * Connectors in the encrypted object store. Secrets are one encrypted attribute, bound by AAD to the
 * provider and auth type (a row edited to another provider fails to decrypt). `secretsSet` names the
 * secrets that are set, so that reads show flags without decrypting anything.
 */
export const CONNECTOR_TYPE = defineObjectType({
  name: 'connector',
  versions: [
    {
      version: 1,
      schema: z.object({
        name: z.string(),
        provider: z.string(),
        authType: z.enum(AUTH_TYPES),
        tokenMode: z.enum(TOKEN_MODES),
        config: z.record(z.string(), z.string()),
        redirectUri: z.string().nullable(),
        allowedReturnOrigins: z.array(z.string()),
        secretsSet: z.array(z.enum(SECRET_NAMES)),
        secrets: z.object({
          clientSecret: z.string().optional(),
          apiKeyValue: z.string().optional(),
          username: z.string().optional(),
          password: z.string().optional(),
          token: z.string().optional(),
        }),
      }),
      attributesToEncrypt: ['secrets'],
      attributesToIncludeInAAD: ['provider', 'authType'],
    },
  ],
});

type PlainConnector = StoredObject<PlainAttributesOf<typeof CONNECTOR_TYPE>>;

/** A connector as reads show it: secrets as flags, never values. */
export interface ConnectorView {
  id: string;
  tenantId: string;
  name: string;
  provider: string;
  authType: AuthType;
  tokenMode: TokenMode;
  config: Record<string, string>;
  redirectUri: string | null;
  allowedReturnOrigins: string[];
  /** One flag per secret the connector holds, e.g. `{ clientSecret: { set: true } }` (none for per-user api_key, basic and bearer connectors). */
  secrets: Partial<Record<SecretName, { set: boolean }>>;
  /** Config fields each end user gives when connecting (a subdomain...): the provider's end-user fields this connector leaves unset. */
  endUserFields: string[];
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/**
 * A connector with what the OAuth and token code need. `clientSecret` and `secrets` are
 * non-enumerable: they never reach JSON, a log line or a spread copy.
 */
export interface ResolvedConnector {
  connector: ConnectorView;
  template: ProviderTemplate;
  /**
   * The template's placeholders filled from the config (endpoints, scopes, client authentication)
   * and the end user's config. While `endUserFields` are missing from `endUserConfig`, every URL
   * that uses one is undefined: resolve again with {@link resolveForEndUser}.
   */
  provider: ResolvedProvider;
  /** The connector's {@link ConnectorView.endUserFields}. */
  endUserFields: readonly string[];
  /** The end user's values of `endUserFields`, as resolved; empty until given. */
  endUserConfig: Readonly<Record<string, string>>;
  /** `config.clientId` for OAuth connectors. */
  clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly secrets: Readonly<ConnectorSecrets>;
}

export interface ConnectorPage {
  items: ConnectorView[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

export interface ConnectorService {
  create(actor: Actor, tenantId: string, input: unknown): Promise<ConnectorView>;
  get(tenantId: string, id: string): Promise<ConnectorView>;
  list(tenantId: string, options?: { limit?: number; after?: string }): Promise<ConnectorPage>;
  update(actor: Actor, tenantId: string, id: string, patch: unknown): Promise<ConnectorView>;
  delete(actor: Actor, tenantId: string, id: string): Promise<void>;
  /**
   * Internal (OAuth and token code): the connector with its secrets and resolved endpoints; with
   * `endUserConfig`, resolved for the end user who gave it (see {@link resolveForEndUser}).
   */
  getResolved(tenantId: string, id: string, endUserConfig?: unknown): Promise<ResolvedConnector>;
  /** The catalog's providers as the API shows them. */
  readonly providers: ProviderDirectory;
  /**
   * The stored credential of an `api_key`, `basic` or `bearer` connector (`invalid_request` for
   * other auth types). Each handout is audited as `connector.credential_issued` (never the value)
   * before the credential is returned.
   */
  issueCredential(actor: Actor, tenantId: string, id: string): Promise<ConnectorCredential>;
}

export interface ConnectorServiceOptions {
  store: EncryptedObjectStore;
  catalog: Catalog;
  /** Records `connector.created`, `connector.updated` and `connector.deleted` (never a secret). */
  /** Records every change in the same transaction as the change (the store must be built with its `handle`). */
  audit?: AuditLog;
  /**
   * Plain http endpoints (to loopback addresses, for the generic providers) are accepted only with
   * this opt-in (`--allow-insecure-loopback`); without it they are refused at create and update,
   * since no request would ever be sent to them. Default false.
   */
  allowInsecureLoopback?: boolean;
  /**
   * Runs before a connector is deleted and removes what depends on it: the OAuth module disconnects
   * (and revokes) its connections, so no stored token outlives its connector. A failure stops the delete.
   */
  beforeDelete?: (tenantId: string, connectorId: string) => Promise<void>;
  /**
   * With a bus, {@link ConnectorService.getResolved} keeps decrypted connectors in this process
   * (see ResolvedConnectorCache): updates and deletes announce themselves on it in their transaction.
   */
  bus?: InvalidationBus;
}

function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new TypeError(`"${name}" must be a non-empty string.`);
  }
}

function toView(catalog: Catalog, object: PlainConnector): ConnectorView {
  const a = object.attributes;
  const flags: ConnectorView['secrets'] = {};
  for (const name of connectorSecretsOf(a.authType, a.tokenMode)) flags[name] = { set: a.secretsSet.includes(name) };
  const template = catalog.get(a.provider);
  return {
    id: object.id,
    tenantId: object.tenantId,
    name: a.name,
    provider: a.provider,
    authType: a.authType,
    tokenMode: a.tokenMode,
    config: { ...a.config },
    redirectUri: a.redirectUri,
    allowedReturnOrigins: [...a.allowedReturnOrigins],
    secrets: flags,
    endUserFields: template ? endUserFieldsOf(template, a.authType, a.tokenMode, a.config) : [],
    revision: object.revision,
    createdAt: object.createdAt,
    updatedAt: object.updatedAt,
  };
}

function isConnectorId(id: string): boolean {
  return /^connector_[0-9A-Za-z]{1,32}$/.test(id);
}

function notFound(id: string): LatchkeyError {
  // The same answer for an unknown id and another tenant's: ids are no oracle.
  return new LatchkeyError('not_found', `No connector with id ${JSON.stringify(id)} exists.`);
}

/**
 * The connector resolved for one end user: `endUserConfig` (the values of its `endUserFields` that
 * the end user gave, checked against the provider's patterns) fills the placeholders the connector
 * leaves open. Throws `validation_failed` naming the field (never the value). No database read.
 *
 * @example
 * const forAcme = resolveForEndUser(await connectors.getResolved(tenantId, id), { subdomain: 'acme' });
 * forAcme.provider.oauth?.discovery === undefined && forAcme.provider.oauth.tokenUrl; // 'https://acme.zendesk.com/oauth/tokens'
 */
export function resolveForEndUser(resolved: ResolvedConnector, endUserConfig: unknown): ResolvedConnector {
  const { connector, template } = resolved;
  const checked = validateEndUserConfig(template, connector.authType, connector.tokenMode, connector.config, endUserConfig);
  if (!checked.ok) {
    const [first] = checked.fields;
    const more = checked.fields.length > 1 ? ` (and ${checked.fields.length - 1} more)` : '';
    const where = first ? `"${first.path}" ${first.message}` : 'invalid';
    throw new LatchkeyError('validation_failed', `The account details are invalid: ${where}${more}.`, { details: { fields: checked.fields } });
  }
  const config: ConnectorConfig = { ...connector.config, ...checked.config };
  const next = {
    connector,
    template,
    provider: resolveProvider(template, config, undefined, { pending: resolved.endUserFields }),
    endUserFields: resolved.endUserFields,
    endUserConfig: Object.freeze({ ...checked.config }),
    clientId: resolved.clientId,
  } as ResolvedConnector;
  Object.defineProperty(next, 'secrets', { value: resolved.secrets, enumerable: false });
  Object.defineProperty(next, 'clientSecret', { value: resolved.clientSecret, enumerable: false });
  return next;
}

/**
 * Connector CRUD. Input is validated as a whole (every bad field in `details.fields` of one 400
 * `validation_failed`); config per provider and auth type through the catalog; secrets per auth type
 * (see SECRETS_BY_AUTH_TYPE). Reads never decrypt; only {@link ConnectorService.getResolved} does.
 *
 * @example
 * const connectors = createConnectorService({ store, catalog: loadCatalog() });
 * const created = await connectors.create(actor, tenantId, {
 *   name: 'Contoso Graph', provider: 'microsoft', authType: 'oauth_authorization_code', tokenMode: 'per_user',
 *   config: { tenantId: 'contoso.onmicrosoft.com', clientId }, secrets: { clientSecret },
 * });
 * created.secrets; // { clientSecret: { set: true } }
 */
export function createConnectorService(options: ConnectorServiceOptions): ConnectorService {
  const { store, catalog, audit } = options;
  const rules = { allowInsecureLoopback: options.allowInsecureLoopback === true };
  const bus = options.bus;
  const resolvedCache = bus === undefined ? undefined : new ResolvedConnectorCache<ResolvedConnector>(bus);

  /**
   * Runs a change and its audit record in one transaction: both commit, or neither. A change to an
   * existing connector (`invalidates`) is announced on the bus in the same transaction.
   */
  async function audited<T>(
    actor: Actor,
    tenantId: string,
    change: (store: EncryptedObjectStore) => Promise<{ result: T; action: string; target: string; details: Record<string, unknown> }>,
    invalidates?: string,
  ): Promise<T> {
    const announce = invalidates === undefined || bus === undefined ? undefined : { scope: 'connector' as const, tenantId, subjectId: invalidates };
    if (!audit && !announce) return (await change(store)).result;
    const result = await store.transaction(async (tx) => {
      const done = await change(tx.store);
      if (audit) await audit.record(tx.db, { tenantId, actor, action: done.action, target: done.target, details: done.details });
      if (announce) await bus?.publish(tx.db, announce);
      return done.result;
    });
    if (announce) bus?.applyLocal(announce);
    return result;
  }

  async function resolve(tenantId: string, id: string): Promise<ResolvedConnector> {
    const object = await read(tenantId, id, decrypted);
    const attributes = object.attributes;
    const template = catalog.get(attributes.provider);
    if (!template) {
      throw new LatchkeyError('invalid_request', `The connector ${id} uses provider "${attributes.provider}", which is not in the catalog.`);
    }
    const view = Object.freeze(toView(catalog, object));
    const resolved = {
      connector: view,
      template,
      provider: Object.freeze(resolveProvider(template, attributes.config, undefined, { pending: view.endUserFields })),
      endUserFields: Object.freeze([...view.endUserFields]),
      endUserConfig: Object.freeze({}),
      clientId: attributes.config.clientId,
    } as ResolvedConnector;
    const secrets = Object.freeze({ ...attributes.secrets });
    Object.defineProperty(resolved, 'secrets', { value: secrets, enumerable: false });
    Object.defineProperty(resolved, 'clientSecret', { value: secrets.clientSecret, enumerable: false });
    // Shared by every caller while cached: nobody may change it.
    return Object.freeze(resolved);
  }

  async function read<T>(tenantId: string, id: string, get: (tenantId: string, id: string) => Promise<T>): Promise<T> {
    assertString(tenantId, 'tenantId');
    assertString(id, 'id');
    if (!isConnectorId(id)) throw notFound(id);
    try {
      return await get(tenantId, id);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'not_found') throw notFound(id);
      throw err;
    }
  }

  const plain = (tenantId: string, id: string) => store.get(CONNECTOR_TYPE, tenantId, id);
  const decrypted = (tenantId: string, id: string) => store.getDecrypted(CONNECTOR_TYPE, tenantId, id);

  const service: ConnectorService = {
    async create(actor, tenantId, input) {
      assertString(tenantId, 'tenantId');
      const attributes = parseCreateInput(catalog, input, rules);
      const created = await audited(actor, tenantId, async (s) => {
        const object = await s.create(CONNECTOR_TYPE, tenantId, { ...attributes });
        const details = { name: attributes.name, provider: attributes.provider, authType: attributes.authType, tokenMode: attributes.tokenMode };
        return { result: object, action: 'connector.created', target: object.id, details };
      });
      return toView(catalog, created);
    },

    async get(tenantId, id) {
      return toView(catalog, await read(tenantId, id, plain));
    },

    async list(tenantId, listOptions = {}) {
      assertString(tenantId, 'tenantId');
      const page = await store.list(CONNECTOR_TYPE, tenantId, { limit: listOptions.limit ?? 100, after: listOptions.after });
      return page.next === undefined ? { items: page.items.map((item) => toView(catalog, item)) } : { items: page.items.map((item) => toView(catalog, item)), next: page.next };
    },

    async update(actor, tenantId, id, patch) {
      let current: StoredObject<ConnectorAttributes>;
      let secretsLost = false;
      try {
        current = await read(tenantId, id, decrypted);
      } catch (err) {
        if (!(err instanceof DecryptionError)) throw err;
        // Damaged ciphertext or a lost key: the connector is repaired by sending its secrets again.
        const damaged = await read(tenantId, id, plain);
        current = { ...damaged, attributes: { ...damaged.attributes, secrets: {} } };
        secretsLost = true;
      }
      const attributes = current.attributes;
      const next = parseUpdateInput(catalog, attributes, patch, { ...rules, secretsLost });
      // Compare-and-set: a concurrent update is refused with `conflict`, never silently lost.
      const changed = Object.keys(patch as object).filter((key) => key !== 'secrets');
      const secrets = Object.keys((patch as { secrets?: object }).secrets ?? {});
      const updated = await audited(
        actor,
        tenantId,
        async (s) => ({
          result: await s.update(CONNECTOR_TYPE, tenantId, id, { ...next }, { expectedRevision: current.revision }),
          action: 'connector.updated',
          target: id,
          details: { changed, ...(secrets.length > 0 ? { secretsChanged: secrets } : {}) },
        }),
        id,
      );
      return toView(catalog, updated);
    },

    async delete(actor, tenantId, id) {
      await read(tenantId, id, plain);
      await options.beforeDelete?.(tenantId, id);
      await audited(
        actor,
        tenantId,
        async (s) => {
          if (!(await s.delete(CONNECTOR_TYPE, tenantId, id))) throw notFound(id);
          return { result: undefined, action: 'connector.deleted', target: id, details: {} };
        },
        id,
      );
    },

    async getResolved(tenantId, id, endUserConfig) {
      const resolved = resolvedCache === undefined ? await resolve(tenantId, id) : await resolvedCache.get(tenantId, id, () => resolve(tenantId, id));
      return endUserConfig === undefined ? resolved : resolveForEndUser(resolved, endUserConfig);
    },

    providers: createProviderDirectory(catalog),

    async issueCredential(actor, tenantId, id) {
      const credential = credentialOf(await service.getResolved(tenantId, id));
      return audited(actor, tenantId, async () => ({
        result: credential,
        action: 'connector.credential_issued',
        target: id,
        details: { authType: credential.authType },
      }));
    },
  };
  return service;
}
