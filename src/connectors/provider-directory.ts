import { LatchkeyError } from '../core/index.js';
import type { Catalog } from './catalog.js';
import { nearestIds, orList } from './nearest-ids.js';
import { SECRET_NAMES, SECRETS_BY_AUTH_TYPE, type SecretName } from './connectors-input.js';
import type { AuthType, ConfigField, ProviderTemplate } from './provider-schema.js';

/** The JSON Schema of one value a connector supplies. */
export interface ProviderFieldSchema {
  type: 'string';
  /** `uri` for URL fields. */
  format?: 'uri';
  minLength: number;
  maxLength: number;
  pattern?: string;
  default?: string;
  /** Secrets: sent, stored encrypted, never read back. */
  writeOnly?: true;
}

/** One value a connector of the provider supplies, in its `config` or its `secrets`. */
export interface ProviderField {
  name: string;
  /** Where it goes in the connector's create body. */
  location: 'config' | 'secrets';
  /** A credential: mask it when it is typed in. Every `secrets` value is stored encrypted and never shown again. */
  secret: boolean;
  /** Required for the auth types it applies to (a per-user `api_key`, `basic` or `bearer` connector holds no secret: each user gives their own). */
  required: boolean;
  /** A per-user connector may leave it unset: each end user then gives it when connecting (an account subdomain). */
  endUser: boolean;
  description: string;
  /** The auth types it applies to. */
  authTypes: AuthType[];
  schema: ProviderFieldSchema;
}

/** A provider of the catalog as a person or program discovers it. */
export interface ProviderView {
  id: string;
  /** The display name. */
  name: string;
  docsUrl: string;
  authTypes: AuthType[];
  /** The scopes asked for when a connector sets none (authorization code); empty without OAuth. */
  defaultScopes: string[];
  fields: ProviderField[];
}

/** The catalog's providers, read-only. */
export interface ProviderDirectory {
  /** Every provider, sorted by id. */
  list(): ProviderView[];
  /** One provider; an unknown id is `not_found` naming the nearest ids (`details.suggestions`). */
  get(id: string): ProviderView;
}

const MAX_CONFIG_LENGTH = 2048;
const MAX_SECRET_LENGTH = 8192;
/** Ids quoted back in an error message; anything else is not echoed. */
const QUOTABLE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

const SECRET_FIELDS: Readonly<Record<SecretName, { secret: boolean; description: string }>> = {
  clientSecret: { secret: true, description: 'The OAuth client secret of your app registration.' },
  apiKeyValue: { secret: true, description: 'The API key.' },
  username: { secret: false, description: 'The user name (or account id) for basic authentication.' },
  password: { secret: true, description: 'The password (or API token) for basic authentication.' },
  token: { secret: true, description: 'The bearer token, sent as `Authorization: Bearer <token>`.' },
};

function configField(template: ProviderTemplate, name: string, field: ConfigField): ProviderField {
  const schema: ProviderFieldSchema = { type: 'string', minLength: 1, maxLength: MAX_CONFIG_LENGTH };
  if (field.type === 'url') schema.format = 'uri';
  if (field.pattern !== undefined) schema.pattern = field.pattern;
  if (field.default !== undefined) schema.default = field.default;
  return {
    name,
    location: 'config',
    secret: false,
    required: field.required,
    endUser: field.endUser === true,
    description: field.description,
    authTypes: [...(field.authTypes ?? template.authTypes)],
    schema,
  };
}

function secretFields(template: ProviderTemplate): ProviderField[] {
  return SECRET_NAMES.flatMap((name) => {
    const authTypes = template.authTypes.filter((authType) => SECRETS_BY_AUTH_TYPE[authType].includes(name));
    if (authTypes.length === 0) return [];
    const { secret, description } = SECRET_FIELDS[name];
    const schema: ProviderFieldSchema = { type: 'string', minLength: 1, maxLength: MAX_SECRET_LENGTH, writeOnly: true };
    return [{ name, location: 'secrets' as const, secret, required: true, endUser: false, description, authTypes, schema }];
  });
}

function viewOf(template: ProviderTemplate): ProviderView {
  return {
    id: template.id,
    name: template.name,
    docsUrl: template.docsUrl,
    authTypes: [...template.authTypes],
    defaultScopes: [...(template.oauth?.scopes.default ?? [])],
    fields: [...Object.entries(template.config).map(([name, field]) => configField(template, name, field)), ...secretFields(template)],
  };
}

function unknownProvider(ids: readonly string[], id: string): LatchkeyError {
  const suggestions = nearestIds(ids, id);
  const which = QUOTABLE_ID.test(id) ? `with id ${JSON.stringify(id)}` : 'with that id';
  const hint = suggestions.length > 0 ? `; did you mean ${orList(suggestions)}?` : '; list the providers to see which exist.';
  return new LatchkeyError('not_found', `No provider ${which} is in the catalog${hint}`, { details: { suggestions } });
}

/**
 * The catalog as the API shows it: per provider its auth types, default scopes and every value a
 * connector supplies, with a JSON Schema each and whether it is a secret. Views are built once.
 *
 * @example
 * const providers = createProviderDirectory(loadCatalog());
 * providers.get('github').fields.map((f) => f.name); // ['clientId', 'scopes', 'clientSecret', 'token']
 * providers.get('gihub'); // throws not_found: 'No provider with id "gihub" is in the catalog; did you mean github?'
 */
export function createProviderDirectory(catalog: Catalog): ProviderDirectory {
  const views = catalog.list().map(viewOf);
  const byId = new Map(views.map((view) => [view.id, view]));
  const ids = views.map((view) => view.id);
  return {
    list: () => views.map((view) => structuredClone(view)),
    get(id) {
      if (typeof id !== 'string') throw new TypeError('"id" must be a string.');
      const view = byId.get(id);
      if (!view) throw unknownProvider(ids, id);
      return structuredClone(view);
    },
  };
}
