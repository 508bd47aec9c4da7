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
