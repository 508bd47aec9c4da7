import { basename } from 'node:path';
import { ConfigError, LatchkeyError } from '../core/index.js';
import {
  API_KEY_LOCATIONS,
  API_KEY_NAME,
  SCOPE_TOKEN,
  SECRET_FIELD_NAME,
  configReferenceOf,
  parseUrlTemplate,
  providerTemplateSchema,
  urlProblem,
} from './provider-schema.js';
import type {
  ApiKeyPlacement,
  ApiKeyTemplate,
  AuthType,
  ClientAuthentication,
  ConfigField,
  ProviderTemplate,
  ScopeSeparator,
} from './provider-schema.js';
// Static imports, so that tsc copies the files to dist/ and no path is computed at run time.
// catalog.test.ts fails when a file in providers/ is missing here.
import airtable from './providers/airtable.json' with { type: 'json' };
import asana from './providers/asana.json' with { type: 'json' };
import atlassian from './providers/atlassian.json' with { type: 'json' };
import bitbucket from './providers/bitbucket.json' with { type: 'json' };
import box from './providers/box.json' with { type: 'json' };
import clickup from './providers/clickup.json' with { type: 'json' };
import confluence from './providers/confluence.json' with { type: 'json' };
import discord from './providers/discord.json' with { type: 'json' };
import dropbox from './providers/dropbox.json' with { type: 'json' };
import github from './providers/github.json' with { type: 'json' };
import gitlab from './providers/gitlab.json' with { type: 'json' };
import google from './providers/google.json' with { type: 'json' };
import http from './providers/http.json' with { type: 'json' };
import hubspot from './providers/hubspot.json' with { type: 'json' };
import intercom from './providers/intercom.json' with { type: 'json' };
import jira from './providers/jira.json' with { type: 'json' };
import linear from './providers/linear.json' with { type: 'json' };
import microsoft from './providers/microsoft.json' with { type: 'json' };
import monday from './providers/monday.json' with { type: 'json' };
import notion from './providers/notion.json' with { type: 'json' };
import oauth2 from './providers/oauth2.json' with { type: 'json' };
import oidc from './providers/oidc.json' with { type: 'json' };
import quickbooks from './providers/quickbooks.json' with { type: 'json' };
import salesforce from './providers/salesforce.json' with { type: 'json' };
import shopify from './providers/shopify.json' with { type: 'json' };
import slack from './providers/slack.json' with { type: 'json' };
import stripe from './providers/stripe.json' with { type: 'json' };
import twilio from './providers/twilio.json' with { type: 'json' };
import xero from './providers/xero.json' with { type: 'json' };
import zendesk from './providers/zendesk.json' with { type: 'json' };
import zoom from './providers/zoom.json' with { type: 'json' };

/** One provider file: its name (the id plus `.json`) and its parsed JSON. */
export interface ProviderSource {
  file: string;
  data: unknown;
}

/** The provider files shipped with Latchkey. */
export const BUNDLED_PROVIDERS: readonly ProviderSource[] = deepFreeze([
  { file: 'airtable.json', data: airtable },
  { file: 'asana.json', data: asana },
  { file: 'atlassian.json', data: atlassian },
  { file: 'bitbucket.json', data: bitbucket },
  { file: 'box.json', data: box },
  { file: 'clickup.json', data: clickup },
  { file: 'confluence.json', data: confluence },
  { file: 'discord.json', data: discord },
  { file: 'dropbox.json', data: dropbox },
  { file: 'github.json', data: github },
  { file: 'gitlab.json', data: gitlab },
  { file: 'google.json', data: google },
  { file: 'http.json', data: http },
  { file: 'hubspot.json', data: hubspot },
  { file: 'intercom.json', data: intercom },
  { file: 'jira.json', data: jira },
  { file: 'linear.json', data: linear },
  { file: 'microsoft.json', data: microsoft },
  { file: 'monday.json', data: monday },
  { file: 'notion.json', data: notion },
  { file: 'oauth2.json', data: oauth2 },
  { file: 'oidc.json', data: oidc },
  { file: 'quickbooks.json', data: quickbooks },
  { file: 'salesforce.json', data: salesforce },
  { file: 'shopify.json', data: shopify },
  { file: 'slack.json', data: slack },
  { file: 'stripe.json', data: stripe },
  { file: 'twilio.json', data: twilio },
  { file: 'xero.json', data: xero },
  { file: 'zendesk.json', data: zendesk },
  { file: 'zoom.json', data: zoom },
]);

/** The validated provider templates, by id. */
export interface Catalog {
  /** The template with this id, or undefined. */
  get(id: string): ProviderTemplate | undefined;
  /** Every template, sorted by id. */
  list(): readonly ProviderTemplate[];
}

export interface ConfigFieldError {
  /** `authType`, `config` or `config.<field>`, as in the connector's request body. */
  path: string;
  message: string;
}

/** A connector's config: field name to value. Never holds a secret. */
export type ConnectorConfig = Readonly<Record<string, string>>;

export type ConfigValidation = { ok: true; config: Record<string, string> } | { ok: false; fields: ConfigFieldError[] };

interface ResolvedOAuthCommon {
  /** For the authorization code grant: `config.scopes` when set, else the template's defaults. */
  scopes: string[];
  /** For the client credentials grant: `config.scopes` when set, else the template's defaults for that grant. */
  clientCredentialsScopes: string[];
  scopeSeparator: ScopeSeparator;
  clientAuthentication: ClientAuthentication;
  pkce: boolean;
  authorizationParams: Record<string, string>;
  tokenParams: Record<string, string>;
}

export interface ResolvedOAuthEndpoints extends ResolvedOAuthCommon {
  discovery: undefined;
  authorizationUrl: string;
  tokenUrl: string;
  /** RFC 7009; undefined when the provider has none or it depends on a value not yet known. */
  revocationUrl: string | undefined;
}

export interface ResolvedOAuthDiscovery extends ResolvedOAuthCommon {
  /** The endpoints come from the issuer's OpenID Connect metadata. */
  discovery: 'oidc';
  issuer: string;
}

export type ResolvedOAuth = ResolvedOAuthEndpoints | ResolvedOAuthDiscovery;

/** A template with its placeholders filled from a connector's config (and a token response). */
export interface ResolvedProvider {
  provider: string;
  /** Undefined while it depends on a token response field (Salesforce `instance_url`) or an unset optional field. */
  apiBaseUrl: string | undefined;
  /** Undefined for providers without api_key, and while a config field it names is not set (`http` connectors of another auth type). */
  apiKey: ApiKeyPlacement | undefined;
  /** Undefined for providers without OAuth, and while its endpoints use a field an end user has not given yet. */
  oauth: ResolvedOAuth | undefined;
}

const MAX_VALUE_LENGTH = 2048;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const validated = new WeakSet<object>();
const patterns = new WeakMap<ConfigField, RegExp>();

/**
 * Validates one provider file. Throws {@link ConfigError} naming the file and the first bad field
 * (every bad field is in `details.fields`); the id must be the file's name without `.json`.
 *
 * @example
 * const template = parseProviderTemplate(JSON.parse(readFileSync(path, 'utf8')), 'acme.json');
 */
export function parseProviderTemplate(data: unknown, file: string): ProviderTemplate {
  const result = providerTemplateSchema.safeParse(data);
  if (!result.success) {
    const fields = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    const first = fields[0];
    const where = first?.path ? `"${first.path}" ${first.message}` : (first?.message ?? 'invalid');
    const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
    throw new ConfigError(`Provider file "${file}" is invalid: ${where}${more}.`, { details: { file, fields } });
  }
  const stem = basename(file).replace(/\.json$/, '');
  if (result.data.id !== stem) {
    const fields = [{ path: 'id', message: `must be "${stem}", the file's name without ".json"` }];
    throw new ConfigError(`Provider file "${file}" is invalid: "id" ${fields[0]?.message}.`, { details: { file, fields } });
  }
  const template = deepFreeze(result.data);
  validated.add(template);
  return template;
}

/**
 * Validates every provider file (the bundled ones unless `sources` is given) and returns the catalog.
 * A bad file throws {@link ConfigError} naming the file and the field. Templates are frozen.
 *
 * @example
 * const catalog = loadCatalog();
 * const microsoft = catalog.get('microsoft');
 * const extended = loadCatalog([...BUNDLED_PROVIDERS, { file: 'acme.json', data: acmeJson }]);
 */
export function loadCatalog(sources: readonly ProviderSource[] = BUNDLED_PROVIDERS): Catalog {
  const byId = new Map<string, ProviderTemplate>();
  for (const source of sources) {
    const template = parseProviderTemplate(source.data, source.file);
    if (byId.has(template.id)) {
      throw new ConfigError(`Provider file "${source.file}" is invalid: "id" ${template.id} is already in the catalog.`);
    }
    byId.set(template.id, template);
  }
  const list = Object.freeze([...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
  return Object.freeze({ get: (id: string) => byId.get(id), list: () => list });
}

/**
 * Checks a connector's `authType` and `config` against its provider: the auth type must be one the
 * provider supports; every field must be declared and apply to that auth type; required fields must be
 * present; values must be non-empty strings matching the field's type and pattern (`scopes` may also
 * be a list of scopes, stored space-separated). Secrets are refused with a pointer to `secrets`. With
 * `allowInsecureLoopback: false`, plain http URLs are refused even where the template allows loopback
 * http. With `leaveToEndUsers` (per-user connectors), a required field the template marks `endUser`
 * may be left out: each end user gives it when connecting. On success, `config` holds the given
 * values plus defaults.
 *
 * @example
 * const result = validateConnectorConfig(catalog.get('microsoft')!, 'oauth_authorization_code', {
 *   tenantId: 'contoso.onmicrosoft.com',
 *   clientId: '00000000-0000-0000-0000-000000000000',
 * });
 * if (!result.ok) throw new LatchkeyError('validation_failed', 'bad config', { details: { fields: result.fields } });
 */
export function validateConnectorConfig(
  template: ProviderTemplate,
  authType: string,
  config: unknown,
  options: { allowInsecureLoopback?: boolean; leaveToEndUsers?: boolean } = {},
): ConfigValidation {
  assertTemplate(template);
  const fields: ConfigFieldError[] = [];
  const supported = (template.authTypes as readonly string[]).includes(authType);
  if (!supported) fields.push({ path: 'authType', message: `must be one of ${template.authTypes.join(', ')} for ${template.name}` });
  if (!isRecord(config)) {
    fields.push({ path: 'config', message: 'must be an object' });
    return { ok: false, fields };
  }
  // With an unsupported auth type, every field is taken to apply, so that field errors still show.
  const applies = (field: ConfigField) => !supported || (field.authTypes ?? template.authTypes).includes(authType as AuthType);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(config)) {
    const path = `config.${name}`;
    const field = Object.hasOwn(template.config, name) ? template.config[name] : undefined;
    if (!field) {
      const message = SECRET_FIELD_NAME.test(name) ? 'is a secret; it belongs in "secrets", never in "config"' : `is not a config field of ${template.name}`;
      fields.push({ path, message });
    } else if (!applies(field)) {
      fields.push({ path, message: `does not apply to auth type ${authType}` });
    } else {
      const given = name === 'scopes' ? scopesValue(value) : value;
      const problem = insecureProblem(template, field, given, options) ?? valueProblem(template, name, field, given);
      if (problem) fields.push({ path, message: problem });
      else out[name] = given as string;
    }
  }
  for (const [name, field] of Object.entries(template.config)) {
    if (!applies(field) || Object.hasOwn(config, name)) continue;
    // A per-user connector may leave an end-user field to each end user (see endUserFieldsOf).
    if (field.required && !(options.leaveToEndUsers === true && field.endUser === true)) fields.push({ path: `config.${name}`, message: 'is required' });
    else if (field.default !== undefined) out[name] = field.default;
  }
  return fields.length > 0 ? { ok: false, fields } : { ok: true, config: out };
}

/**
 * The config fields each end user gives when connecting: those the template marks `endUser`, that
 * apply to the auth type and that the connector leaves unset. Empty for shared connectors.
 *
 * @example
 * endUserFieldsOf(catalog.get('zendesk')!, 'oauth_authorization_code', 'per_user', { clientId }); // ['subdomain']
 */
export function endUserFieldsOf(template: ProviderTemplate, authType: AuthType, tokenMode: string, config: ConnectorConfig): string[] {
  assertTemplate(template);
  if (tokenMode !== 'per_user') return [];
  return Object.entries(template.config)
    .filter(([name, field]) => field.endUser === true && (field.authTypes ?? template.authTypes).includes(authType) && !Object.hasOwn(config, name))
    .map(([name]) => name);
}

/**
 * Checks the config an end user gives (see {@link endUserFieldsOf}): only those fields, each a
 * string matching the field's pattern, the required ones present. Messages name the field, never
 * the value. On success, `config` holds the values given.
 *
 * @example
 * validateEndUserConfig(zendesk, 'oauth_authorization_code', 'per_user', { clientId }, { subdomain: 'acme' });
 * // { ok: true, config: { subdomain: 'acme' } }
 */
export function validateEndUserConfig(
  template: ProviderTemplate,
  authType: AuthType,
  tokenMode: string,
  connectorConfig: ConnectorConfig,
  given: unknown,
): ConfigValidation {
  const asked = endUserFieldsOf(template, authType, tokenMode, connectorConfig);
  if (!isRecord(given)) return { ok: false, fields: [{ path: 'config', message: 'must be an object' }] };
  const fields: ConfigFieldError[] = [];
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(given)) {
    const path = `config.${name}`;
    const field = asked.includes(name) ? template.config[name] : undefined;
    if (!field) {
      fields.push({ path, message: asked.length === 0 ? 'is not asked of end users by this connector' : `is not one of the fields asked of end users (${asked.join(', ')})` });
      continue;
    }
    const problem = valueProblem(template, name, field, value);
    if (problem) fields.push({ path, message: problem });
    else out[name] = value as string;
  }
  for (const name of asked) {
    if (!Object.hasOwn(given, name) && template.config[name]?.required) fields.push({ path: `config.${name}`, message: 'is required' });
  }
  return fields.length > 0 ? { ok: false, fields } : { ok: true, config: out };
}

/**
 * Fills a template's placeholders: from `config` (defaults applied), and from `tokenResponse` for the
 * fields the template lists in `tokenResponseFields`. A placeholder that starts a URL must hold an https
 * URL; one in the host must be a host name; one in the path must be a single segment (percent-encoded);
 * one in the query is percent-encoded. A bad config value throws `validation_failed` naming the field;
 * a bad token response value throws `internal_error`. The config is expected to have passed
 * {@link validateConnectorConfig}; values placed in URLs are checked again here. `pending` names
 * fields each end user gives (see {@link endUserFieldsOf}): until they are in `config`, every URL
 * that uses one is undefined (the OAuth block too when its endpoints do), so nothing is ever sent
 * to a guessed address.
 *
 * @example
 * const resolved = resolveProvider(catalog.get('microsoft')!, { tenantId: 'contoso.onmicrosoft.com', clientId });
 * resolved.oauth?.discovery === undefined && resolved.oauth.tokenUrl;
 * // 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token'
 * resolveProvider(catalog.get('salesforce')!, { clientId }, { instance_url: 'https://acme.my.salesforce.com' }).apiBaseUrl;
 * // 'https://acme.my.salesforce.com'
 */
export function resolveProvider(
  template: ProviderTemplate,
  config: ConnectorConfig,
  tokenResponse?: Readonly<Record<string, unknown>>,
  options: { pending?: readonly string[] } = {},
): ResolvedProvider {
  assertTemplate(template);
  if (!isRecord(config)) throw new TypeError('"config" must be an object.');
  if (tokenResponse !== undefined && !isRecord(tokenResponse)) throw new TypeError('"tokenResponse" must be an object.');
  const values = new Map<string, string>();
  for (const [name, field] of Object.entries(template.config)) {
    const given: unknown = Object.hasOwn(config, name) ? config[name] : undefined;
    const value = given === undefined ? field.default : given;
    if (value === undefined) continue;
    const problem = valueProblem(template, name, field, value);
    if (problem) throw configError(name, problem);
    values.set(name, value as string);
  }
  const context: FillContext = { template, values, tokenResponse, pending: new Set(options.pending ?? []) };
  return {
    provider: template.id,
    apiBaseUrl: fillUrl(context, template.apiBaseUrl),
    apiKey: template.apiKey ? fillApiKey(context, template.apiKey) : undefined,
    oauth: template.oauth ? resolveOAuth(context, template.oauth) : undefined,
  };
}

function resolveOAuth(context: FillContext, oauth: NonNullable<ProviderTemplate['oauth']>): ResolvedOAuth | undefined {
  // Endpoints that depend on an end user's value are not known before that end user gives it.
  const early = [oauth.authorizationUrl, oauth.tokenUrl, oauth.issuer];
  if (early.some((url) => url !== undefined && usesPending(context, url))) return undefined;
  const separator = oauth.scopes.separator;
  const configured = context.template.config.scopes ? context.values.get('scopes') : undefined;
  const scopes = configured === undefined ? undefined : splitScopes(configured, separator);
  const common: ResolvedOAuthCommon = {
    scopes: scopes ?? [...oauth.scopes.default],
    clientCredentialsScopes: scopes ?? [...(oauth.scopes.clientCredentials ?? oauth.scopes.default)],
    scopeSeparator: separator,
    clientAuthentication: oauth.clientAuthentication,
    pkce: oauth.pkce,
    authorizationParams: { ...oauth.authorizationParams },
    tokenParams: { ...oauth.tokenParams },
  };
  if (oauth.discovery === 'oidc') {
    return { ...common, discovery: 'oidc', issuer: requiredUrl(context, oauth.issuer, 'issuer') };
  }
  return {
    ...common,
    discovery: undefined,
    authorizationUrl: requiredUrl(context, oauth.authorizationUrl, 'authorizationUrl'),
    tokenUrl: requiredUrl(context, oauth.tokenUrl, 'tokenUrl'),
    revocationUrl: oauth.revocationUrl === undefined ? undefined : fillUrl(context, oauth.revocationUrl),
  };
}

interface FillContext {
  template: ProviderTemplate;
  values: ReadonlyMap<string, string>;
  tokenResponse: Readonly<Record<string, unknown>> | undefined;
  /** Fields each end user gives: while unknown, every URL that uses one is undefined. */
  pending: ReadonlySet<string>;
}

/** The schema guarantees that these URLs exist and use only fields that always have a value. */
function requiredUrl(context: FillContext, urlTemplate: string | undefined, key: string): string {
  const url = urlTemplate === undefined ? undefined : fillUrl(context, urlTemplate);
  if (url === undefined) throw new ConfigError(`Provider "${context.template.id}" has no value for "oauth.${key}".`);
  return url;
}

function usesPending(context: FillContext, urlTemplate: string): boolean {
  if (context.pending.size === 0) return false;
  const parts = parseUrlTemplate(urlTemplate);
  return typeof parts !== 'string' && parts.some((part) => part.kind === 'placeholder' && context.pending.has(part.name) && !context.values.has(part.name));
}

/**
 * Undefined when a placeholder has no value yet: an optional config field that is not set, or a token
 * response field before there is a token response. A missing required field throws.
 */
function fillUrl(context: FillContext, urlTemplate: string): string | undefined {
  const { template } = context;
  const parts = parseUrlTemplate(urlTemplate);
  if (typeof parts === 'string') throw new ConfigError(`Provider "${template.id}" has a URL template that ${parts}.`);
  const loopback = template.allowLoopbackHttp === true;
  let out = '';
  for (const [index, part] of parts.entries()) {
    if (part.kind === 'text') {
      out += part.text;
      continue;
    }
    const source = lookup(context, part.name);
    if (source.value === undefined && context.pending.has(part.name)) return undefined;
    if (source.value === undefined) {
      if (source.required) throw source.fail('is required');
      return undefined;
    }
    const value = source.value;
    if (part.position === 'url') {
      const problem = urlProblem(value, loopback);
      if (problem) throw source.fail(problem);
      const continues = index < parts.length - 1;
      if (continues && new URL(value).search) throw source.fail('must not have a query, since the URL continues after it');
      out += continues ? value.replace(/\/+$/, '') : value;
    } else if (part.position === 'host') {
      if (!HOST_NAME.test(value)) throw source.fail('must be a host name');
      out += value;
    } else if (part.position === 'path') {
      if (value === '.' || value === '..' || /[/\\?#%]/.test(value)) {
        throw source.fail('must be a single path segment (no "/", "\\", "?", "#", "%", and not "." or "..")');
      }
      out += encodeURIComponent(value);
    } else {
      out += encodeURIComponent(value);
    }
  }
  const problem = urlProblem(out, loopback);
  if (problem) throw new ConfigError(`Provider "${template.id}" resolves a URL that ${problem}.`);
  return out;
}

/** `in` and `name` from the template, or from the config fields they reference (checked again here). */
function fillApiKey(context: FillContext, apiKey: ApiKeyTemplate): ApiKeyPlacement | undefined {
  const value = (given: string): string | undefined => {
    const name = configReferenceOf(given);
    return name === undefined ? given : context.values.get(name);
  };
  const location = value(apiKey.in);
  const name = value(apiKey.name);
  if (location === undefined || name === undefined) return undefined;
  if (!isApiKeyLocation(location)) throw configError(configReferenceOf(apiKey.in) ?? 'in', 'must be "header" or "query"');
  if (!API_KEY_NAME.test(name)) throw configError(configReferenceOf(apiKey.name) ?? 'name', 'must be a header or query parameter name');
  const placement: ApiKeyPlacement = { in: location, name };
  if (apiKey.prefix !== undefined) placement.prefix = apiKey.prefix;
  return placement;
}

function isApiKeyLocation(value: string): value is ApiKeyPlacement['in'] {
  return API_KEY_LOCATIONS.some((location) => location === value);
}

interface PlaceholderSource {
  value: string | undefined;
  required: boolean;
  fail: (message: string) => LatchkeyError;
}

function lookup(context: FillContext, name: string): PlaceholderSource {
  const field = Object.hasOwn(context.template.config, name) ? context.template.config[name] : undefined;
  if (field) {
    return { value: context.values.get(name), required: field.required, fail: (message) => configError(name, message) };
  }
  // A token response field; the schema allows no other source.
  const response = context.tokenResponse;
  const fail = (message: string) =>
    new LatchkeyError('internal_error', `The token response from ${context.template.name} is unusable: "${name}" ${message}.`);
  if (response === undefined) return { value: undefined, required: false, fail };
  const raw = Object.hasOwn(response, name) ? response[name] : undefined;
  if (typeof raw !== 'string' || raw.length === 0) {
    return { value: undefined, required: true, fail: () => fail(raw === undefined ? 'is missing' : 'must be a non-empty string') };
  }
  return { value: raw, required: true, fail };
}

function valueProblem(template: ProviderTemplate, name: string, field: ConfigField, value: unknown): string | undefined {
  if (typeof value !== 'string') return name === 'scopes' ? 'must be a space-separated string or a list of scopes' : 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_VALUE_LENGTH) return `must be at most ${MAX_VALUE_LENGTH} characters`;
  if (/\p{Cc}/u.test(value)) return 'must not contain control characters';
  if (field.type === 'url') {
    const problem = urlProblem(value, template.allowLoopbackHttp === true);
    if (problem) return problem;
  }
  // In the field's own words, not its regular expression (which the catalog lists for programs).
  if (field.pattern !== undefined && !patternOf(field).test(value)) return `is not in the form it takes (${field.description.replace(/\.$/, '')})`;
  if (name === 'scopes' && template.oauth) {
    const scopes = splitScopes(value, template.oauth.scopes.separator);
    if (scopes.length === 0 || !scopes.every((scope) => SCOPE_TOKEN.test(scope))) return 'must be scopes separated by spaces';
  }
  return undefined;
}

/** `scopes` given as a list of scope tokens: stored as the space-separated string (a bad list stays as it is and is refused). */
function scopesValue(value: unknown): unknown {
  if (!Array.isArray(value) || value.length === 0) return value;
  return value.every((scope) => typeof scope === 'string' && SCOPE_TOKEN.test(scope)) ? value.join(' ') : value;
}

/**
 * With `allowInsecureLoopback: false`, a plain http URL is refused even where the template allows
 * loopback http: the server would never send a request there. Undefined: the template's rule alone.
 */
function insecureProblem(template: ProviderTemplate, field: ConfigField, value: unknown, options: { allowInsecureLoopback?: boolean }): string | undefined {
  if (options.allowInsecureLoopback !== false || field.type !== 'url' || template.allowLoopbackHttp !== true) return undefined;
  if (typeof value !== 'string' || !/^http:/i.test(value)) return undefined;
  return 'uses plain http, which this server refuses: use https (for a local test server on a loopback address, start Latchkey with --allow-insecure-loopback)';
}

/** Scopes in config are separated by spaces; the provider's own separator is accepted too. */
function splitScopes(value: string, separator: ScopeSeparator): string[] {
  return value.split(/\s+/).flatMap((part) => part.split(separator)).filter((scope) => scope.length > 0);
}

function patternOf(field: ConfigField): RegExp {
  let pattern = patterns.get(field);
  if (!pattern) {
    pattern = new RegExp(field.pattern ?? '', 'u');
    patterns.set(field, pattern);
  }
  return pattern;
}

function configError(name: string, message: string): LatchkeyError {
  const fields = [{ path: `config.${name}`, message }];
  return new LatchkeyError('validation_failed', `The connector config is invalid: "config.${name}" ${message}.`, { details: { fields } });
}

function assertTemplate(template: ProviderTemplate): void {
  if (typeof template !== 'object' || template === null || !validated.has(template)) {
    throw new TypeError('"template" must be a provider template from loadCatalog() or parseProviderTemplate().');
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
