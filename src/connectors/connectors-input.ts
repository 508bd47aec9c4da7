import { LatchkeyError } from '../core/index.js';
import { validateConnectorConfig, type Catalog, type ConfigFieldError } from './catalog.js';
import { secretProblem } from './credentials.js';
import { nearestIds, orList } from './nearest-ids.js';
import { AUTH_TYPES, PER_USER_AUTH_TYPES, urlProblem, type AuthType, type ProviderTemplate } from './provider-schema.js';

export const TOKEN_MODES = ['shared', 'per_user'] as const;
/**
 * `shared`: one connection for the connector; `per_user`: one per user or end user (authorization
 * code, where each user signs in; `api_key`, `basic` and `bearer`, where each user gives their own
 * credential and the connector holds none).
 */
export type TokenMode = (typeof TOKEN_MODES)[number];

export const SECRET_NAMES = ['clientSecret', 'apiKeyValue', 'username', 'password', 'token'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];
/** A connector's secrets; which ones apply depends on its auth type (see {@link SECRETS_BY_AUTH_TYPE}). */
export type ConnectorSecrets = Partial<Record<SecretName, string>>;

/**
 * The secrets each auth type requires. Every OAuth connector needs a client secret: every template in
 * the catalog authenticates its client with `client_secret_basic` or `client_secret_post` (there is
 * no public-client method), and PKCE protects the code, not the client. No auth type has optional
 * secrets, so a secret that is not listed here for the auth type is refused.
 */
export const SECRETS_BY_AUTH_TYPE: Readonly<Record<AuthType, readonly SecretName[]>> = Object.freeze({
  none: [],
  api_key: ['apiKeyValue'],
  basic: ['username', 'password'],
  bearer: ['token'],
  oauth_client_credentials: ['clientSecret'],
  oauth_authorization_code: ['clientSecret'],
});

/**
 * The secrets a connector itself holds: its auth type's, except for a per-user `api_key`, `basic`
 * or `bearer` connector, whose credentials are each user's own and live in their connections.
 *
 * @example
 * connectorSecretsOf('basic', 'shared');   // ['username', 'password']
 * connectorSecretsOf('basic', 'per_user'); // []
 */
export function connectorSecretsOf(authType: AuthType, tokenMode: TokenMode): readonly SecretName[] {
  if (tokenMode === 'per_user' && (authType === 'api_key' || authType === 'basic' || authType === 'bearer')) return [];
  return SECRETS_BY_AUTH_TYPE[authType];
}

const MAX_NAME_LENGTH = 100;
const MAX_SECRET_LENGTH = 8192;
const MAX_RETURN_ORIGINS = 20;
const CONTROL = /\p{Cc}/u;

/** What `create` accepts. */
export interface CreateConnectorInput {
  name: string;
  provider: string;
  authType: AuthType;
  /** Default `shared`. `per_user` with `oauth_authorization_code`, `api_key`, `basic` or `bearer`. */
  tokenMode?: TokenMode;
  /** `scopes` may be a list as well as a space-separated string. */
  config?: Record<string, string | readonly string[]>;
  secrets?: ConnectorSecrets;
  /** Overrides the redirect URI built from the public URL (an https URL, or http on a loopback host). */
  redirectUri?: string | null;
  /** Origins (`https://app.example.com`) that `returnTo` may point at, besides the global list. */
  allowedReturnOrigins?: string[];
}

/**
 * What `update` accepts. `config` and `secrets` are merge patches: a value sets, `null` removes,
 * an absent key keeps. `provider`, `authType` and `tokenMode` cannot change: connections and their
 * tokens depend on them; create another connector instead.
 */
export interface UpdateConnectorInput {
  name?: string;
  config?: Record<string, string | readonly string[] | null>;
  secrets?: Partial<Record<SecretName, string | null>>;
  redirectUri?: string | null;
  allowedReturnOrigins?: string[];
}

/** The plain and secret attributes of a connector object, as validated. */
export interface ConnectorAttributes {
  name: string;
  provider: string;
  authType: AuthType;
  tokenMode: TokenMode;
  config: Record<string, string>;
  redirectUri: string | null;
  allowedReturnOrigins: string[];
  secretsSet: SecretName[];
  secrets: ConnectorSecrets;
}

type Fields = ConfigFieldError[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.trim().length === 0) return 'must not be empty';
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (CONTROL.test(value)) return 'must not contain control characters';
  return undefined;
}

function redirectUriProblem(value: unknown): string | undefined {
  if (value === null) return undefined;
  if (typeof value !== 'string') return 'must be a string or null';
  return urlProblem(value, true);
}

/** An origin as `URL.origin` writes it: scheme, host and port only. */
function checkReturnOrigins(value: unknown, fields: Fields): string[] {
  if (!Array.isArray(value)) {
    fields.push({ path: 'allowedReturnOrigins', message: 'must be a list of origins' });
    return [];
  }
  if (value.length > MAX_RETURN_ORIGINS) fields.push({ path: 'allowedReturnOrigins', message: `must hold at most ${MAX_RETURN_ORIGINS} origins` });
  const out: string[] = [];
  value.forEach((origin, index) => {
    const path = `allowedReturnOrigins.${index}`;
    let url: URL | undefined;
    try {
      url = typeof origin === 'string' ? new URL(origin) : undefined;
    } catch {
      url = undefined;
    }
    const bare = url && url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password && !/[?#]/.test(origin as string);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !bare) {
      fields.push({ path, message: 'must be an origin such as https://app.example.com (scheme, host and port; no path)' });
    } else if (!out.includes(url.origin)) {
      out.push(url.origin);
    }
  });
  return out;
}

/** What the connector service decides beyond the input itself. */
export interface InputRules {
  /** `--allow-insecure-loopback`: plain http URLs in config (loopback only, generic providers only). */
  allowInsecureLoopback: boolean;
}

/**
 * Checks the secrets against the auth type: each required one set, no other one given. `lost`: the
 * stored secrets could not be decrypted, so a missing one is asked for again.
 */
function checkSecrets(authType: AuthType | undefined, tokenMode: TokenMode, secrets: Record<string, unknown>, fields: Fields, lost = false): ConnectorSecrets {
  const applicable = authType ? connectorSecretsOf(authType, tokenMode) : SECRET_NAMES;
  const out: ConnectorSecrets = {};
  for (const [name, value] of Object.entries(secrets)) {
    const path = `secrets.${name}`;
    if (!(SECRET_NAMES as readonly string[]).includes(name)) {
      fields.push({ path, message: `is not a connector secret (${SECRET_NAMES.join(', ')})` });
    } else if (!applicable.includes(name as SecretName)) {
      const perUser = authType !== undefined && SECRETS_BY_AUTH_TYPE[authType].includes(name as SecretName);
      fields.push({ path, message: perUser ? 'does not apply to a per_user connector: each user gives their own credential when connecting' : `does not apply to auth type ${authType}` });
    } else if (typeof value !== 'string') {
      fields.push({ path, message: 'must be a string' });
    } else if (value.length === 0) {
      fields.push({ path, message: 'must not be empty' });
    } else if (value.length > MAX_SECRET_LENGTH) {
      fields.push({ path, message: `must be at most ${MAX_SECRET_LENGTH} characters` });
    } else {
      // The API key and bearer token go into a header as they are; the others are encoded first.
      const problem = secretProblem(value, name === 'apiKeyValue' || name === 'token');
      if (problem) fields.push({ path, message: problem });
      else out[name as SecretName] = value;
    }
  }
  if (authType) {
    for (const name of connectorSecretsOf(authType, tokenMode)) {
      if (Object.hasOwn(secrets, name)) continue;
      const message = lost ? 'must be sent again: the stored secrets cannot be decrypted, so every secret of the connector is replaced' : `is required for auth type ${authType}`;
      fields.push({ path: `secrets.${name}`, message });
    }
  }
  return out;
}

export function invalid(fields: Fields): LatchkeyError {
  const first = fields[0];
  const where = first ? `"${first.path}" ${first.message}` : 'invalid';
  const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
  return new LatchkeyError('validation_failed', `The connector is invalid: ${where}${more}.`, { details: { fields } });
}

function template(catalog: Catalog, provider: unknown, fields: Fields): ProviderTemplate | undefined {
  if (typeof provider !== 'string') {
    fields.push({ path: 'provider', message: 'must be a string' });
    return undefined;
  }
  const found = catalog.get(provider);
  if (!found) {
    const near = nearestIds(catalog.list().map((t) => t.id), provider);
    fields.push({ path: 'provider', message: `is not a provider in the catalog${near.length > 0 ? `; did you mean ${orList(near)}?` : ''}` });
  }
  return found;
}

/**
 * Validates a create request as a whole and reports every bad field at once (400 validation_failed
 * with `details.fields`). Config goes through the catalog's per-provider validation.
 */
export function parseCreateInput(catalog: Catalog, input: unknown, rules: InputRules): ConnectorAttributes {
  if (!isRecord(input)) throw invalid([{ path: '', message: 'must be an object' }]);
  const fields: Fields = [];
  const known = new Set(['name', 'provider', 'authType', 'tokenMode', 'config', 'secrets', 'redirectUri', 'allowedReturnOrigins']);
  for (const key of Object.keys(input)) if (!known.has(key)) fields.push({ path: key, message: 'is not a connector field' });

  const nameIssue = nameProblem(input.name);
  if (nameIssue) fields.push({ path: 'name', message: nameIssue });
  const tpl = template(catalog, input.provider, fields);
  const authType = (AUTH_TYPES as readonly unknown[]).includes(input.authType) ? (input.authType as AuthType) : undefined;
  if (!authType) fields.push({ path: 'authType', message: `must be one of ${AUTH_TYPES.join(', ')}` });
  const tokenMode = input.tokenMode ?? 'shared';
  if (!(TOKEN_MODES as readonly unknown[]).includes(tokenMode)) {
    fields.push({ path: 'tokenMode', message: `must be one of ${TOKEN_MODES.join(', ')}` });
  } else if (tokenMode === 'per_user' && authType && !PER_USER_AUTH_TYPES.includes(authType)) {
    fields.push({ path: 'tokenMode', message: `can be per_user only with auth type ${PER_USER_AUTH_TYPES.join(', ')}` });
  }
  const mode: TokenMode = tokenMode === 'per_user' ? 'per_user' : 'shared';
  let config: Record<string, string> = {};
  if (tpl && authType) {
    const result = validateConnectorConfig(tpl, authType, input.config ?? {}, { ...rules, leaveToEndUsers: mode === 'per_user' });
    if (result.ok) config = result.config;
    else fields.push(...result.fields);
  } else if (input.config !== undefined && !isRecord(input.config)) {
    fields.push({ path: 'config', message: 'must be an object' });
  }
  const rawSecrets = input.secrets ?? {};
  let secrets: ConnectorSecrets = {};
  if (!isRecord(rawSecrets)) fields.push({ path: 'secrets', message: 'must be an object' });
  else secrets = checkSecrets(authType, mode, rawSecrets, fields);
  const redirectUri = input.redirectUri ?? null;
  const redirectIssue = redirectUriProblem(redirectUri);
  if (redirectIssue) fields.push({ path: 'redirectUri', message: redirectIssue });
  const allowedReturnOrigins = checkReturnOrigins(input.allowedReturnOrigins ?? [], fields);

  if (fields.length > 0) throw invalid(fields);
  return {
    name: input.name as string,
    provider: (tpl as ProviderTemplate).id,
    authType: authType as AuthType,
    tokenMode: tokenMode as TokenMode,
    config,
    redirectUri: redirectUri as string | null,
    allowedReturnOrigins,
    secretsSet: secretNames(secrets),
    secrets,
  };
}

function mergePatch<T>(current: Record<string, T>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

/**
 * Applies an update request to the current (decrypted) attributes and validates the result.
 * `secretsLost`: the stored secrets could not be decrypted (`current.secrets` is empty), and the
 * patch must replace all of them.
 */
export function parseUpdateInput(catalog: Catalog, current: ConnectorAttributes, patch: unknown, rules: InputRules & { secretsLost?: boolean }): ConnectorAttributes {
  if (!isRecord(patch)) throw invalid([{ path: '', message: 'must be an object' }]);
  const fields: Fields = [];
  const immutable = new Set(['provider', 'authType', 'tokenMode']);
  const known = new Set(['name', 'config', 'secrets', 'redirectUri', 'allowedReturnOrigins']);
  for (const key of Object.keys(patch)) {
    if (immutable.has(key)) {
      if (patch[key] !== current[key as keyof ConnectorAttributes]) fields.push({ path: key, message: 'cannot be changed; create another connector' });
    } else if (!known.has(key)) {
      fields.push({ path: key, message: 'is not a connector field' });
    }
  }
  const next: ConnectorAttributes = { ...current };
  if (patch.name !== undefined) {
    const issue = nameProblem(patch.name);
    if (issue) fields.push({ path: 'name', message: issue });
    else next.name = patch.name as string;
  }
  if (patch.config !== undefined) {
    if (!isRecord(patch.config)) {
      fields.push({ path: 'config', message: 'must be an object' });
    } else {
      const tpl = catalog.get(current.provider);
      if (!tpl) {
        fields.push({ path: 'provider', message: 'is no longer in the catalog' });
      } else {
        const result = validateConnectorConfig(tpl, current.authType, mergePatch(current.config, patch.config), {
          ...rules,
          leaveToEndUsers: current.tokenMode === 'per_user',
        });
        if (result.ok) next.config = result.config;
        else fields.push(...result.fields);
      }
    }
  }
  if (patch.secrets !== undefined || rules.secretsLost) {
    const given = patch.secrets ?? {};
    if (!isRecord(given)) {
      fields.push({ path: 'secrets', message: 'must be an object' });
    } else {
      next.secrets = checkSecrets(current.authType, current.tokenMode, mergePatch(current.secrets, given), fields, rules.secretsLost);
      next.secretsSet = secretNames(next.secrets);
    }
  }
  if (patch.redirectUri !== undefined) {
    const issue = redirectUriProblem(patch.redirectUri);
    if (issue) fields.push({ path: 'redirectUri', message: issue });
    else next.redirectUri = patch.redirectUri as string | null;
  }
  if (patch.allowedReturnOrigins !== undefined) next.allowedReturnOrigins = checkReturnOrigins(patch.allowedReturnOrigins, fields);
  if (fields.length > 0) throw invalid(fields);
  return next;
}

function secretNames(secrets: ConnectorSecrets): SecretName[] {
  return SECRET_NAMES.filter((name) => secrets[name] !== undefined);
}
