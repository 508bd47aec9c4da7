import { z } from 'zod';
import { isLoopbackHost } from '../outbound/index.js';

/** How a connector authenticates to the third party. */
export const AUTH_TYPES = [
  'none',
  'api_key',
  'basic',
  'bearer',
  'oauth_client_credentials',
  'oauth_authorization_code',
] as const;

export type AuthType = (typeof AUTH_TYPES)[number];

/** The auth types that use a provider's `oauth` block. */
export const OAUTH_AUTH_TYPES: readonly AuthType[] = ['oauth_client_credentials', 'oauth_authorization_code'];

export function isOAuthAuthType(authType: string): boolean {
  return (OAUTH_AUTH_TYPES as readonly string[]).includes(authType);
}

/** The auth types a connector may keep one connection per user for (`tokenMode: per_user`). */
export const PER_USER_AUTH_TYPES: readonly AuthType[] = ['oauth_authorization_code', 'api_key', 'basic', 'bearer'];

/**
 * Where a `{placeholder}` sits in a URL template, which decides how its value is checked and filled:
 * `url` starts the template and must be a whole URL; `host` is in the authority and must be a host name;
 * `path` is one path segment and is percent-encoded; `query` is percent-encoded.
 */
export type PlaceholderPosition = 'url' | 'host' | 'path' | 'query';

export type UrlTemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'placeholder'; name: string; position: PlaceholderPosition };

const PLACEHOLDER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Config field names that would hold a secret; secrets live in the encrypted `secrets`, never in config. */
export const SECRET_FIELD_NAME = /secret|password|passwd|private_?key|api_?key|(?:access|refresh|bearer|auth)_?token/i;
/** A scope token per RFC 6749 section 3.3 (printable ASCII except space, `"` and `\`). */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const SAMPLE_URL = 'https://placeholder.invalid';
const SAMPLE_VALUE = 'placeholder';

/** Parameters the OAuth client sets itself; a template may not override them. */
const RESERVED_AUTHORIZATION_PARAMS = [
  'response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method',
];
const RESERVED_TOKEN_PARAMS = [
  'grant_type', 'code', 'redirect_uri', 'code_verifier', 'client_id', 'client_secret', 'client_assertion',
  'client_assertion_type', 'refresh_token', 'scope',
];

/**
 * Splits a URL template into text and placeholders, or returns why it cannot (a sentence fragment
 * that follows the field's name).
 *
 * @example
 * parseUrlTemplate('https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token');
 * // [{ kind: 'text', text: 'https://login.microsoftonline.com/' },
 * //  { kind: 'placeholder', name: 'tenantId', position: 'path' }, { kind: 'text', text: '/oauth2/v2.0/token' }]
 */
export function parseUrlTemplate(template: string): UrlTemplatePart[] | string {
  const parts: UrlTemplatePart[] = [];
  let shape = '';
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    const text = open === -1 ? rest : rest.slice(0, open);
    if (text.includes('}')) return 'has a "}" without a matching "{"';
    const previous = parts.at(-1);
    if (previous?.kind === 'placeholder' && previous.position === 'url' && !text.startsWith('/')) {
      return `must continue with "/" or end after {${previous.name}}, which is a whole URL`;
    }
    if (text) {
      parts.push({ kind: 'text', text });
      shape += text;
    }
    if (open === -1) break;
    const close = rest.indexOf('}', open);
    if (close === -1) return 'has a "{" without a matching "}"';
    const name = rest.slice(open + 1, close);
    if (!PLACEHOLDER_NAME.test(name)) return `has a placeholder "{${name}}" whose name is not letters, digits and "_"`;
    const position = positionAfter(shape);
    if (position === undefined) return `has the placeholder {${name}} in its fragment`;
    parts.push({ kind: 'placeholder', name, position });
    shape += position === 'url' ? SAMPLE_URL : SAMPLE_VALUE;
    rest = rest.slice(close + 1);
  }
  return parts;
}

function positionAfter(shape: string): PlaceholderPosition | undefined {
  if (shape === '') return 'url';
  if (shape.includes('#')) return undefined;
  if (shape.includes('?')) return 'query';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/]*$/i.test(shape)) return 'host';
  return 'path';
}


/**
 * Why `value` is not an acceptable endpoint URL, or undefined when it is: https only, or http on a
 * loopback host when the provider sets `allowLoopbackHttp` (generic providers, for local servers);
 * no user name or password; no fragment.
 */
export function urlProblem(value: string, allowLoopbackHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  const loopbackHttp = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !(allowLoopbackHttp && loopbackHttp)) {
    return allowLoopbackHttp
      ? 'must be an https URL (http only for localhost, 127.0.0.0/8 or [::1])'
      : 'must be an https URL';
  }
  if (url.username || url.password) return 'must not contain a user name or password';
  if (url.hash || value.includes('#')) return 'must not contain a fragment';
  return undefined;
}

const urlTemplate = z.string().min(1).max(2048);
const params = z.record(z.string().regex(/^[A-Za-z0-9_.:-]+$/, { error: 'must be a parameter name' }), z.string().max(1024));
const scopeList = z.array(z.string().regex(SCOPE_TOKEN, { error: 'must be a scope token (printable ASCII, no space, quote or backslash)' }));

const configFieldSchema = z.strictObject({
  type: z.enum(['string', 'url']),
  required: z.boolean(),
  description: z.string().min(1).max(500),
  /** An anchored regular expression (`^...$`, Unicode mode) the value must match. */
  pattern: z.string().min(2).max(1000).optional(),
  default: z.string().min(1).max(2048).optional(),
  /** The auth types the field applies to; all of the provider's when omitted. */
  authTypes: z.array(z.enum(AUTH_TYPES)).min(1).optional(),
  /**
   * Each end user of a per-user connector may give the value (an account subdomain, a shop) when
   * they connect, if the connector leaves it unset. A string field with a pattern only.
   */
  endUser: z.boolean().optional(),
});

const oauthSchema = z.strictObject({
  authorizationUrl: urlTemplate.optional(),
  tokenUrl: urlTemplate.optional(),
  /** An RFC 7009 revocation endpoint; omitted when the provider has none (or a non-standard one). */
  revocationUrl: urlTemplate.optional(),
  /** `oidc`: the issuer's metadata decides the endpoints; the template then names `issuer` instead of URLs. */
  discovery: z.literal('oidc').optional(),
  issuer: urlTemplate.optional(),
  scopes: z.strictObject({
    default: scopeList,
    separator: z.enum([' ', ',', '+']),
    /** Defaults for the client credentials grant when they differ from `default`. */
    clientCredentials: scopeList.optional(),
  }),
  clientAuthentication: z.enum(['client_secret_basic', 'client_secret_post']),
  pkce: z.boolean(),
  authorizationParams: params.optional(),
  tokenParams: params.optional(),
});

/** Where an API key goes. */
export const API_KEY_LOCATIONS = ['header', 'query'] as const;
/** A header name (an RFC 9110 token), also used for query parameter names. */
export const API_KEY_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;
/** `{field}`: the value comes from the connector's config (the generic `http` provider). */
const CONFIG_REFERENCE = /^\{([A-Za-z][A-Za-z0-9_]*)\}$/;
const isLocation = (value: string): boolean => API_KEY_LOCATIONS.some((location) => location === value);

const apiKeySchema = z.strictObject({
  in: z.string().refine((value) => isLocation(value) || CONFIG_REFERENCE.test(value), {
    error: 'must be "header", "query" or a {field} reference to a config field',
  }),
  name: z.string().refine((value) => API_KEY_NAME.test(value) || CONFIG_REFERENCE.test(value), {
    error: 'must be a header or parameter name, or a {field} reference to a config field',
  }),
  prefix: z.string().min(1).max(64).optional(),
});

const templateShape = z.strictObject({
  /** A note for maintainers (JSON has no comments): why a default is what it is. Ignored. */
  $comment: z.string().optional(),
  id: z.string().max(64).regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, { error: 'must be lower-case letters and digits, with single "-" between words' }),
  name: z.string().min(1).max(100),
  docsUrl: z.string().min(1).max(2048),
  authTypes: z.array(z.enum(AUTH_TYPES)).min(1),
  /** Loud opt-in for generic providers: URLs from config may use http on a loopback host. */
  allowLoopbackHttp: z.boolean().optional(),
  oauth: oauthSchema.optional(),
  apiBaseUrl: urlTemplate,
  apiKey: apiKeySchema.optional(),
  config: z.record(z.string().regex(FIELD_NAME, { error: 'must be a field name (letters, digits, "_")' }), configFieldSchema),
  tokenResponseFields: z.array(z.string().regex(PLACEHOLDER_NAME, { error: 'must be a field name (letters, digits, "_")' })).optional(),
});

type RawTemplate = z.output<typeof templateShape>;
type Issue = (path: PropertyKey[], message: string) => void;

/**
 * A provider template: the data in one `providers/<id>.json` file. Refinements enforce what zod's shape
 * cannot: https everywhere, every placeholder declared, OAuth blocks only with OAuth auth types, and so on.
 */
export const providerTemplateSchema = templateShape.superRefine((template, ctx) => {
  checkTemplate(template, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
});

export type ProviderTemplate = z.output<typeof providerTemplateSchema>;
export type ConfigField = ProviderTemplate['config'][string];
/** A template's `apiKey` block: `in` and `name` may be `{field}` references to config fields. */
export type ApiKeyTemplate = NonNullable<ProviderTemplate['apiKey']>;
/** Where a connector's API key goes, with config references filled in. */
export interface ApiKeyPlacement {
  in: (typeof API_KEY_LOCATIONS)[number];
  name: string;
  prefix?: string;
}

/** The config field a `{field}` reference names, or undefined when `value` is a literal. */
export function configReferenceOf(value: string): string | undefined {
  return CONFIG_REFERENCE.exec(value)?.[1];
}
export type OAuthTemplate = NonNullable<ProviderTemplate['oauth']>;
export type ScopeSeparator = OAuthTemplate['scopes']['separator'];
export type ClientAuthentication = OAuthTemplate['clientAuthentication'];

function checkTemplate(t: RawTemplate, issue: Issue): void {
  if (new Set(t.authTypes).size !== t.authTypes.length) issue(['authTypes'], 'must not repeat an auth type');
  const oauthTypes = t.authTypes.filter(isOAuthAuthType);
  if (oauthTypes.length > 0 && !t.oauth) issue(['oauth'], `is required for ${oauthTypes.join(' and ')}`);
  if (t.oauth && oauthTypes.length === 0) issue(['oauth'], 'is only allowed with an oauth_* auth type');
  if (t.authTypes.includes('api_key') && !t.apiKey) issue(['apiKey'], 'is required for the api_key auth type');
  if (!t.authTypes.includes('api_key') && t.apiKey) issue(['apiKey'], 'is only allowed with the api_key auth type');
  if (t.apiKey) checkApiKeyReferences(t, t.apiKey, issue);
  if (!t.docsUrl.startsWith('https://') || urlProblem(t.docsUrl, false)) issue(['docsUrl'], 'must be an https URL');
  checkConfigFields(t, oauthTypes, issue);
  if (t.oauth) checkOAuth(t, t.oauth, issue);
  checkUrlTemplate(t, ['apiBaseUrl'], t.apiBaseUrl, 'late', issue);
}

function checkConfigFields(t: RawTemplate, oauthTypes: AuthType[], issue: Issue): void {
  const tokenFields = t.tokenResponseFields ?? [];
  if (new Set(tokenFields).size !== tokenFields.length) issue(['tokenResponseFields'], 'must not repeat a field');
  for (const [name, field] of Object.entries(t.config)) {
    const path = ['config', name];
    if (SECRET_FIELD_NAME.test(name)) issue(path, 'names a secret; secrets are never config');
    if (tokenFields.includes(name)) issue(path, 'is also in "tokenResponseFields"; a placeholder has one source');
    if (field.required && field.default !== undefined) issue([...path, 'default'], 'is not allowed on a required field');
    const applies = field.authTypes ?? t.authTypes;
    if (new Set(applies).size !== applies.length) issue([...path, 'authTypes'], 'must not repeat an auth type');
    for (const authType of applies) {
      if (!t.authTypes.includes(authType)) issue([...path, 'authTypes'], `names ${authType}, which the provider does not support`);
    }
    if (field.endUser === true) {
      if (name === 'clientId' || name === 'scopes') issue([...path, 'endUser'], 'is not allowed on clientId or scopes; the application chooses them');
      if (field.type !== 'string' || field.pattern === undefined) issue([...path, 'endUser'], 'needs a "string" field with a pattern; an end user types the value');
      if (!applies.some((authType) => PER_USER_AUTH_TYPES.includes(authType))) issue([...path, 'endUser'], 'needs an auth type that keeps a connection per user');
    }
    const pattern = field.pattern === undefined ? undefined : compilePattern(field.pattern);
    if (typeof pattern === 'string') issue([...path, 'pattern'], pattern);
    if (field.default !== undefined) {
      if (pattern instanceof RegExp && !pattern.test(field.default)) issue([...path, 'default'], 'must match the pattern');
      const problem = field.type === 'url' ? urlProblem(field.default, t.allowLoopbackHttp === true) : undefined;
      if (problem) issue([...path, 'default'], problem);
    }
  }
  const clientId = t.config.clientId;
  if (t.oauth) {
    if (!clientId || clientId.type !== 'string' || !clientId.required) {
      issue(['config', 'clientId'], 'must be a required string field on a provider with OAuth');
    } else if (!sameSet(clientId.authTypes ?? t.authTypes, oauthTypes)) {
      issue(['config', 'clientId', 'authTypes'], `must be exactly the OAuth auth types (${oauthTypes.join(', ')})`);
    }
  } else if (clientId) {
    issue(['config', 'clientId'], 'is only for providers with OAuth');
  }
  const scopes = t.config.scopes;
  if (scopes) {
    if (!t.oauth) issue(['config', 'scopes'], 'is only for providers with OAuth');
    if (scopes.type !== 'string') issue(['config', 'scopes', 'type'], 'must be "string" (space-separated scopes)');
    if ((scopes.authTypes ?? t.authTypes).some((authType) => !isOAuthAuthType(authType))) {
      issue(['config', 'scopes', 'authTypes'], 'must name only OAuth auth types');
    }
  }
}

function checkOAuth(t: RawTemplate, oauth: OAuthTemplate, issue: Issue): void {
  if (oauth.discovery === 'oidc') {
    if (oauth.issuer === undefined) issue(['oauth', 'issuer'], 'is required with discovery "oidc"');
    for (const key of ['authorizationUrl', 'tokenUrl', 'revocationUrl'] as const) {
      if (oauth[key] !== undefined) issue(['oauth', key], 'is not allowed with discovery "oidc"; the issuer metadata names it');
    }
  } else {
    if (oauth.authorizationUrl === undefined) issue(['oauth', 'authorizationUrl'], 'is required');
    if (oauth.tokenUrl === undefined) issue(['oauth', 'tokenUrl'], 'is required');
    if (oauth.issuer !== undefined) issue(['oauth', 'issuer'], 'is only allowed with discovery "oidc"');
  }
  const separator = oauth.scopes.separator;
  for (const key of ['default', 'clientCredentials'] as const) {
    if (oauth.scopes[key]?.some((scope) => scope.includes(separator))) {
      issue(['oauth', 'scopes', key], `must not contain the separator "${separator}" inside a scope`);
    }
  }
  for (const name of Object.keys(oauth.authorizationParams ?? {})) {
    if (RESERVED_AUTHORIZATION_PARAMS.includes(name)) issue(['oauth', 'authorizationParams', name], 'is set by the OAuth client and cannot be overridden');
  }
  for (const name of Object.keys(oauth.tokenParams ?? {})) {
    if (RESERVED_TOKEN_PARAMS.includes(name)) issue(['oauth', 'tokenParams', name], 'is set by the OAuth client and cannot be overridden');
  }
  const urls = [
    ['authorizationUrl', 'early'],
    ['tokenUrl', 'early'],
    ['issuer', 'early'],
    ['revocationUrl', 'late'],
  ] as const;
  for (const [key, stage] of urls) {
    const template = oauth[key];
    if (template !== undefined) checkUrlTemplate(t, ['oauth', key], template, stage, issue);
  }
}

/**
 * `early` URLs are used before any token exists (authorize, token, issuer): their placeholders must be
 * config fields that always have a value. `late` URLs (API base, revocation) may use optional fields and
 * token response fields; they resolve to undefined until those are known.
 */
function checkUrlTemplate(t: RawTemplate, path: PropertyKey[], template: string, stage: 'early' | 'late', issue: Issue): void {
  const parts = parseUrlTemplate(template);
  if (typeof parts === 'string') {
    issue(path, parts);
    return;
  }
  const tokenFields = t.tokenResponseFields ?? [];
  for (const part of parts) {
    if (part.kind !== 'placeholder') continue;
    const name = part.name;
    const field = t.config[name];
    const fromToken = tokenFields.includes(name);
    if (!field && !fromToken) {
      issue(path, `uses {${name}}, which is declared neither in "config" nor in "tokenResponseFields"`);
      continue;
    }
    if (stage === 'early' && fromToken) issue(path, `uses {${name}} from the token response, which is not known before the first token`);
    if (stage === 'early' && field && !field.required && field.default === undefined) {
      issue(path, `uses {${name}}, an optional config field without a default; it must be known before any token exists`);
    }
    if (part.position === 'url' && field && field.type !== 'url') issue(path, `starts with {${name}}, so config.${name} must be a "url" field`);
    if (part.position !== 'url' && field?.type === 'url') issue(path, `uses the url field {${name}} inside the URL; url fields can only start a URL`);
    if (part.position === 'host' && fromToken) issue(path, `uses the token response field {${name}} in the host`);
    if (part.position === 'host' && field && field.pattern === undefined) issue(path, `uses {${name}} in the host, so config.${name} needs a pattern`);
  }
  const sample = parts.map((part) => (part.kind === 'text' ? part.text : part.position === 'url' ? SAMPLE_URL : SAMPLE_VALUE)).join('');
  const first = parts[0];
  if (first?.kind === 'text' && !first.text.startsWith('https://')) {
    issue(path, 'must start with "https://" or with a placeholder');
    return;
  }
  const problem = urlProblem(sample, false);
  if (problem) issue(path, problem);
}

/**
 * A `{field}` in `apiKey.in` or `apiKey.name` must name a string config field of the api_key auth
 * type that always has a value and whose pattern keeps the value valid (checked again on resolve).
 */
function checkApiKeyReferences(t: RawTemplate, apiKey: ApiKeyTemplate, issue: Issue): void {
  for (const key of ['in', 'name'] as const) {
    const name = configReferenceOf(apiKey[key]);
    if (name === undefined) continue;
    const path = ['apiKey', key];
    const field = Object.hasOwn(t.config, name) ? t.config[name] : undefined;
    if (!field) {
      issue(path, `uses {${name}}, which is not declared in "config"`);
      continue;
    }
    if (field.type !== 'string') issue(path, `uses {${name}}, so config.${name} must be a "string" field`);
    if (!field.required && field.default === undefined) issue(path, `uses {${name}}, an optional config field without a default`);
    if (field.pattern === undefined) issue(path, `uses {${name}}, so config.${name} needs a pattern`);
    if (!(field.authTypes ?? t.authTypes).includes('api_key')) issue(path, `uses {${name}}, so config.${name} must apply to the api_key auth type`);
  }
}

function compilePattern(pattern: string): RegExp | string {
  if (!pattern.startsWith('^') || !pattern.endsWith('$')) return 'must be anchored with "^" and "$"';
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return 'is not a valid regular expression';
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value) => b.includes(value));
}
