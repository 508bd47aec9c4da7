import { z } from 'zod';
import { LatchkeyError } from '../core/index.js';
import type { ResolvedConnector } from './connectors.js';
import { API_KEY_LOCATIONS, type AuthType } from './provider-schema.js';

/** The auth types whose credential is the stored secret itself, handed out as it is. */
export const STATIC_CREDENTIAL_AUTH_TYPES = ['api_key', 'basic', 'bearer'] as const;
export type StaticCredentialAuthType = (typeof STATIC_CREDENTIAL_AUTH_TYPES)[number];

/**
 * Whether connectors of this auth type hand out their stored credential ({@link credentialOf}).
 *
 * @example
 * isStaticCredentialAuthType('basic'); // true
 * isStaticCredentialAuthType('oauth_authorization_code'); // false: its access token comes from a connection
 */
export function isStaticCredentialAuthType(authType: string): authType is StaticCredentialAuthType {
  return STATIC_CREDENTIAL_AUTH_TYPES.some((type) => type === authType);
}

/**
 * The credential of an `api_key`, `basic` or `bearer` connector, one shape per auth type. This
 * schema is the answer's schema too: the HTTP route sends what it parses.
 *
 * @example
 * const credential = connectorCredentialSchema.parse(await response.json());
 * if (credential.authType === 'api_key' && credential.in === 'header') headers[credential.name] = credential.prefix + credential.key;
 */
export const connectorCredentialSchema = z
  .discriminatedUnion('authType', [
    z
      .object({
        authType: z.literal('api_key'),
        in: z.enum(API_KEY_LOCATIONS).describe('Send the key in a header or in a query parameter.'),
        name: z.string().describe('The header or query parameter name.'),
        prefix: z.string().describe('Put before the key in the value (`Bearer ` for Stripe); empty for most providers.'),
        key: z.string(),
      })
      .meta({ id: 'ApiKeyCredential' }),
    z.object({ authType: z.literal('basic'), username: z.string(), password: z.string() }).meta({ id: 'BasicCredential' }),
    z
      .object({ authType: z.literal('bearer'), token: z.string().describe('Send as `Authorization: Bearer <token>`.') })
      .meta({ id: 'BearerCredential' }),
  ])
  .meta({ id: 'ConnectorCredential' });

export type ConnectorCredential = z.output<typeof connectorCredentialSchema>;

function missing(connectorId: string, what: string): LatchkeyError {
  // Creation requires every secret, so this is a damaged or hand-edited connector: fix it with a PATCH.
  return new LatchkeyError('invalid_request', `The connector ${connectorId} has no ${what}; set it with an update of the connector.`);
}

/**
 * The credential of a resolved `api_key`, `basic` or `bearer` connector. Throws `invalid_request`
 * for other auth types (OAuth connectors hand out access tokens through the token client instead).
 *
 * @example
 * const credential = credentialOf(await connectors.getResolved(tenantId, id));
 * if (credential.authType === 'bearer') headers.authorization = `Bearer ${credential.token}`;
 */
export function credentialOf(resolved: ResolvedConnector): ConnectorCredential {
  const { connector, secrets } = resolved;
  const authType: AuthType = connector.authType;
  if (connector.tokenMode === 'per_user' && isStaticCredentialAuthType(authType)) {
    throw new LatchkeyError('invalid_request', `The connector ${connector.id} keeps one credential per user; name the user or the end user whose credential it is.`);
  }
  switch (authType) {
    case 'api_key': {
      const placement = resolved.provider.apiKey;
      if (!placement) throw missing(connector.id, 'API key placement in its config');
      if (secrets.apiKeyValue === undefined) throw missing(connector.id, 'API key');
      return { authType, in: placement.in, name: placement.name, prefix: placement.prefix ?? '', key: secrets.apiKeyValue };
    }
    case 'basic':
      if (secrets.username === undefined || secrets.password === undefined) throw missing(connector.id, 'user name and password');
      return { authType, username: secrets.username, password: secrets.password };
    case 'bearer':
      if (secrets.token === undefined) throw missing(connector.id, 'token');
      return { authType, token: secrets.token };
    default:
      throw new LatchkeyError(
        'invalid_request',
        `The connector ${connector.id} uses auth type ${authType}, which has no stored credential to hand out${authType === 'none' ? '' : '; take an access token of its connection instead'}.`,
      );
  }
}

/** A credential one user gave for a per-user `api_key`, `basic` or `bearer` connector: only the secret parts. */
export type UserCredential = { key: string } | { username: string; password: string } | { token: string };

/** Each secret of a user's credential: what `parseUserCredential` accepts. */
export const USER_CREDENTIAL_FIELDS: Readonly<Record<StaticCredentialAuthType, readonly ('key' | 'username' | 'password' | 'token')[]>> = Object.freeze({
  api_key: ['key'],
  basic: ['username', 'password'],
  bearer: ['token'],
});

const MAX_CREDENTIAL_LENGTH = 8192;
const MAX_USERNAME_LENGTH = 255;
const CONTROL = /\p{Cc}/u;
/** Beyond Latin-1: an HTTP header cannot carry it (Node refuses to send it). */
// eslint-disable-next-line no-control-regex
const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/**
 * What is wrong with a secret that Latchkey sends to a provider (undefined: nothing): control
 * characters never (NUL, CR, LF...: never valid in a header or query value, and a way to smuggle
 * one in), and for one sent as it is in a header (an API key, a bearer token) nothing beyond
 * Latin-1 either, so that it is refused when stored rather than failing every call later.
 *
 * @example
 * secretProblem('abc\r\nX-Injected: 1', true); // 'must not contain control characters'
 */
export function secretProblem(value: string, inHeader: boolean): string | undefined {
  if (CONTROL.test(value)) return 'must not contain control characters';
  if (inHeader && NOT_LATIN1.test(value)) return 'must not contain characters beyond Latin-1 (an HTTP header cannot carry them)';
  return undefined;
}

function credentialProblem(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  const max = name === 'username' ? MAX_USERNAME_LENGTH : MAX_CREDENTIAL_LENGTH;
  if (value.length > max) return `must be at most ${max} characters`;
  const problem = secretProblem(value, name === 'key' || name === 'token');
  if (problem) return problem;
  if (name === 'username' && value.includes(':')) return 'must not contain ":" (basic authentication separates it from the password with one)';
  return undefined;
}

/**
 * Checks what a user gives as their credential for a per-user connector of `authType`: an object
 * with exactly that auth type's fields (`{key}`, `{username, password}`, `{token}`), each a
 * non-empty string without control characters, at most 8192 characters (a user name 255, without
 * ":"). Throws `validation_failed` whose message and `details.fields` name the field, never the value.
 *
 * @example
 * parseUserCredential('basic', { username: 'ada', password: secret }); // { username: 'ada', password: secret }
 * parseUserCredential('api_key', { key: 'a\u0000b' }); // throws: "credential.key" must not contain control characters
 */
export function parseUserCredential(authType: StaticCredentialAuthType, input: unknown): UserCredential {
  const fields: { path: string; message: string }[] = [];
  const wanted = USER_CREDENTIAL_FIELDS[authType];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    fields.push({ path: 'credential', message: `must be an object with ${wanted.join(' and ')}` });
  } else {
    for (const name of Object.keys(input)) {
      if (!(wanted as readonly string[]).includes(name)) fields.push({ path: `credential.${name}`, message: `is not part of a ${authType} credential (${wanted.join(', ')})` });
    }
    for (const name of wanted) {
      const value: unknown = Object.hasOwn(input, name) ? (input as Record<string, unknown>)[name] : undefined;
      const problem = value === undefined ? 'is required' : credentialProblem(name, value);
      if (problem) fields.push({ path: `credential.${name}`, message: problem });
    }
  }
  const [first] = fields;
  if (first) {
    const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
    throw new LatchkeyError('validation_failed', `The credential is invalid: "${first.path}" ${first.message}${more}.`, { details: { fields } });
  }
  const given = input as Record<string, string>;
  switch (authType) {
    case 'api_key':
      return { key: given.key as string };
    case 'basic':
      return { username: given.username as string, password: given.password as string };
    case 'bearer':
      return { token: given.token as string };
  }
}

/**
 * The typed credential of a user's connection to a per-user `api_key`, `basic` or `bearer`
 * connector: the user's secret with the connector's placement (header or query, name, prefix).
 *
 * @example
 * const credential = credentialWith(resolved, { key: userKey }); // { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: userKey }
 */
export function credentialWith(resolved: ResolvedConnector, stored: Partial<Record<'key' | 'username' | 'password' | 'token', string>>): ConnectorCredential {
  const { connector } = resolved;
  const damaged = () => new LatchkeyError('needs_reauthorization', `The stored credential of this connection to ${connector.id} is unusable; connect again.`);
  switch (connector.authType) {
    case 'api_key': {
      const placement = resolved.provider.apiKey;
      if (!placement) throw missing(connector.id, 'API key placement in its config');
      if (stored.key === undefined) throw damaged();
      return { authType: 'api_key', in: placement.in, name: placement.name, prefix: placement.prefix ?? '', key: stored.key };
    }
    case 'basic':
      if (stored.username === undefined || stored.password === undefined) throw damaged();
      return { authType: 'basic', username: stored.username, password: stored.password };
    case 'bearer':
      if (stored.token === undefined) throw damaged();
      return { authType: 'bearer', token: stored.token };
    default:
      throw new LatchkeyError('invalid_request', `The connector ${connector.id} uses auth type ${connector.authType}, which has no stored credential to hand out.`);
  }
}
