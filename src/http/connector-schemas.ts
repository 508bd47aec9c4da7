import { z } from 'zod';
import { EXAMPLE_IDS as ID, EXAMPLE_PUBLIC_URL, EXAMPLE_TIMES as AT } from './examples.js';
import { timestampSchema, withRequestExample } from './schemas.js';
import { AUTH_TYPES, SECRET_NAMES, TOKEN_MODES, type SecretName } from '../connectors/index.js';
import { CONNECTION_STATUSES } from '../oauth/index.js';

// Request and response schemas of the connector and connection routes. Request schemas check
// shapes only; the connector service checks meaning (provider, auth type, config per provider) and
// reports every bad field at once. No message echoes a value: a secret in the wrong place stays out.

/** Connector ids as the object store makes them. */
export const connectorIdSchema = z
  .string({ error: 'must be a string' })
  .regex(/^connector_[0-9A-Za-z]{1,32}$/, { error: 'is not a connector id' });

export const connectorParams = z.object({ id: connectorIdSchema });

const secretValue = z.string({ error: 'must be a string' }).max(8192, { error: 'must be at most 8192 characters' });
const configString = z.string({ error: 'must be a string' }).max(2048, { error: 'must be at most 2048 characters' });
// A list only makes sense for `scopes`; the connector service refuses it for other fields.
const configValue = z.union([configString, z.array(configString, { error: 'must be a string or a list of strings' }).max(100, { error: 'must hold at most 100 items' })], {
  error: 'must be a string or a list of strings',
});
const origins = z
  .array(z.string({ error: 'must be a string' }).max(300, { error: 'is too long' }), { error: 'must be a list of origins' })
  .max(20, { error: 'must hold at most 20 origins' })
  .describe('Origins (`https://app.example.com`) that `returnTo` may point at, besides Latchkey\'s own.');
const redirectUri = z
  .string({ error: 'must be a string' })
  .max(2048, { error: 'must be at most 2048 characters' })
  .nullable()
  .describe('Overrides the redirect URI `<publicUrl>/api/v1/oauth/callback`; null: the default.');

function bySecret<T extends z.ZodType>(value: T): Record<SecretName, z.ZodOptional<T>> {
  return Object.fromEntries(SECRET_NAMES.map((name) => [name, value.optional()])) as Record<SecretName, z.ZodOptional<T>>;
}

export const createConnectorBody = withRequestExample(
  z.strictObject({
    name: z.string({ error: 'must be a string' }).describe('1 to 100 characters.'),
    provider: z.string({ error: 'must be a string' }).max(64, { error: 'is too long' }).describe('A provider id of the catalog (`microsoft`, `oidc`, `oauth2`...).'),
    authType: z.enum(AUTH_TYPES, { error: `must be one of ${AUTH_TYPES.join(', ')}` }),
    tokenMode: z
      .enum(TOKEN_MODES, { error: `must be one of ${TOKEN_MODES.join(', ')}` })
      .optional()
      .describe('`shared` (default): one connection for the connector; `per_user`: one per user or end user (oauth_authorization_code, api_key, basic or bearer; for the last three each user gives their own credential).'),
    config: z
      .record(z.string(), configValue, { error: 'must be an object of strings' })
      .optional()
      .describe('Per provider and auth type (`clientId`, `tenantId`, `issuer`, `scopes`...); never a secret. `scopes` may be a space-separated string or a list.'),
    secrets: z
      .strictObject(bySecret(secretValue), { error: 'must be an object' })
      .optional()
      .describe('The auth type\'s secrets (`clientSecret` for OAuth); stored encrypted, never shown again.'),
    redirectUri: redirectUri.optional(),
    allowedReturnOrigins: origins.optional(),
  }),
  {
    name: 'github',
    provider: 'github',
    authType: 'oauth_authorization_code',
    tokenMode: 'per_user',
    config: { clientId: 'Iv1.8a61f9b3a7aba766', scopes: ['read:user', 'repo'] },
    secrets: { clientSecret: 'example-client-secret-not-real' },
    allowedReturnOrigins: ['https://app.example.com'],
  },
);

export const updateConnectorBody = withRequestExample(
  z.strictObject({
    name: z.string({ error: 'must be a string' }).optional(),
    // Immutable; accepted only unchanged so a client may send back what it read.
    provider: z.string({ error: 'must be a string' }).max(64, { error: 'is too long' }).optional().describe('Cannot change.'),
    authType: z.enum(AUTH_TYPES, { error: `must be one of ${AUTH_TYPES.join(', ')}` }).optional().describe('Cannot change.'),
    tokenMode: z.enum(TOKEN_MODES, { error: `must be one of ${TOKEN_MODES.join(', ')}` }).optional().describe('Cannot change.'),
    config: z
      .record(z.string(), configValue.nullable(), { error: 'must be an object of strings or nulls' })
      .optional()
      .describe('A merge patch: a value sets a field, null removes it, an absent field is kept.'),
    secrets: z
      .strictObject(bySecret(secretValue.nullable()), { error: 'must be an object' })
      .optional()
      .describe('A merge patch of secrets: a value replaces one, null removes it, an absent one is kept.'),
    redirectUri: redirectUri.optional(),
    allowedReturnOrigins: origins.optional(),
  }),
  { config: { scopes: 'read:user repo workflow' }, secrets: { clientSecret: 'example-new-client-secret-not-real' } },
);

const secretFlag = z.object({ set: z.boolean() });

export const CONNECTOR_EXAMPLE = {
  id: ID.connector,
  tenantId: ID.tenant,
  name: 'github',
  provider: 'github',
  authType: 'oauth_authorization_code',
  tokenMode: 'per_user',
  config: { clientId: 'Iv1.8a61f9b3a7aba766', scopes: 'read:user repo' },
  redirectUri: null,
  allowedReturnOrigins: ['https://app.example.com'],
  secrets: { clientSecret: { set: true } },
  endUserFields: [],
  revision: 3,
  createdAt: AT.created,
  updatedAt: AT.updated,
};

export const connectorSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    provider: z.string(),
    authType: z.enum(AUTH_TYPES),
    tokenMode: z.enum(TOKEN_MODES),
    config: z.record(z.string(), z.string()),
    redirectUri: z.string().nullable(),
    allowedReturnOrigins: z.array(z.string()),
    secrets: z
      .object(bySecret(secretFlag))
      .describe('One flag per secret the connector holds, e.g. `{"clientSecret":{"set":true}}`; never a value. Per-user api_key, basic and bearer connectors hold none: each user gives their own.'),
    endUserFields: z.array(z.string()).describe('Config fields each end user gives when connecting (an account subdomain): the provider\'s end-user fields this connector leaves unset.'),
    revision: z.number().int(),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({
    id: 'Connector',
    description: 'A connector: a provider with its settings; secret fields are never shown, only whether they are set.',
    examples: [CONNECTOR_EXAMPLE],
  });

export const connectorListQuery = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(500, { error: 'must be at most 500' })
    .optional(),
  after: connectorIdSchema.optional().describe('The `next` of the previous page.'),
});

/** `?user=` of the connection routes: whose per-user connection (default: the caller's). */
export const connectionQuery = z.strictObject({
  user: z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .max(255, { error: 'must be at most 255 characters' })
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f:]+$/, { error: 'must not contain control characters or colons' })
    .optional()
    .describe('Per-user connectors only: the user whose connection (default the caller; another user needs identity:admin).'),
});

export const authorizeBody = withRequestExample(
  z
    .strictObject({
      returnTo: z
        .string({ error: 'must be a string' })
        .max(2048, { error: 'must be at most 2048 characters' })
        .optional()
        .describe('Where the browser goes after the callback: a path on Latchkey, or a URL on an allowed origin.'),
    })
    .nullish(),
  { returnTo: 'https://app.example.com/settings/integrations' },
);

export const authorizationSchema = z
  .object({
    authorizationUrl: z.string().describe('Send the user\'s browser here.'),
    expiresAt: timestampSchema.describe('The sign-in must finish before this.'),
  })
  .meta({
    id: 'Authorization',
    description: 'Where to send the user to connect an account.',
    examples: [
      {
        authorizationUrl:
          'https://github.com/login/oauth/authorize?response_type=code&client_id=Iv1.8a61f9b3a7aba766' +
          `&redirect_uri=${encodeURIComponent(`${EXAMPLE_PUBLIC_URL}/api/v1/oauth/callback`)}&scope=read%3Auser+repo` +
          '&state=EXAMPLEstate&code_challenge=EXAMPLEchallenge&code_challenge_method=S256',
        expiresAt: AT.soon,
      },
    ],
  });

export const accessTokenSchema = z
  .object({
    accessToken: z.string(),
    tokenType: z.string().describe('Use as `Authorization: <tokenType> <accessToken>`.'),
    expiresAt: timestampSchema.nullable().describe('Null when the provider did not say.'),
  })
  .meta({
    id: 'AccessToken',
    description: 'A valid access token of the connection.',
    examples: [{ accessToken: 'example-access-token-not-real', tokenType: 'bearer', expiresAt: AT.inAnHour }],
  });

const CONNECTION_EXAMPLE = {
  id: `per-user:${ID.connector}:end-user:customer-42`,
  connectorId: ID.connector,
  userId: null,
  endUserId: 'customer-42',
  tokenType: 'bearer',
  scopes: ['read:user', 'repo'],
  expiresAt: AT.inAnHour,
  refreshTokenExpiresAt: null,
  status: 'active',
  lastRefreshAt: AT.now,
  lastRefreshError: null,
  lastFailureAt: null,
  backoffUntil: null,
  extra: {},
  config: {},
  createdAt: AT.created,
  updatedAt: AT.now,
};

export const connectionSchema = z
  .object({
    id: z.string().describe('`shared:<connectorId>`, `per-user:<connectorId>:<userId>` or `per-user:<connectorId>:end-user:<endUserId>`.'),
    connectorId: z.string(),
    userId: z.string().nullable().describe('The Latchkey user of a per-user connection.'),
    endUserId: z.string().nullable().describe('The application\'s end user of a per-user connection.'),
    tokenType: z.string(),
    scopes: z.array(z.string()),
    expiresAt: timestampSchema.nullable(),
    refreshTokenExpiresAt: timestampSchema.nullable(),
    status: z.enum(CONNECTION_STATUSES),
    lastRefreshAt: timestampSchema.nullable(),
    lastRefreshError: z.string().nullable(),
    lastFailureAt: timestampSchema.nullable(),
    backoffUntil: timestampSchema.nullable().describe('After failed refreshes, no refresh is tried before this; null otherwise.'),
    extra: z.record(z.string(), z.unknown()).describe('Other fields the provider returned (`instance_url`...); never a token.'),
    config: z.record(z.string(), z.string()).describe('What the user gave for the connector\'s end-user fields (`{"subdomain":"acme"}`); never a secret.'),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'Connection', description: 'A connection\'s status (never its tokens or credential).', examples: [CONNECTION_EXAMPLE] });

const credentialValue = z.string({ error: 'must be a string' }).max(8192, { error: 'must be at most 8192 characters' });

/** `PUT .../connection`: a user's own credential for a per-user api_key, basic or bearer connector. */
export const saveCredentialBody = z
  .strictObject({
    credential: z
      .strictObject(
        { key: credentialValue.optional(), username: credentialValue.optional(), password: credentialValue.optional(), token: credentialValue.optional() },
        { error: 'must be an object' },
      )
      .describe('`{key}` for api_key, `{username, password}` for basic, `{token}` for bearer; stored encrypted, never shown again.'),
    config: z
      .record(z.string(), z.string({ error: 'must be a string' }).max(2048, { error: 'must be at most 2048 characters' }), { error: 'must be an object of strings' })
      .optional()
      .describe('The connector\'s `endUserFields` (an account subdomain...).'),
  })
  .meta({
    id: 'SaveCredential',
    description: 'The credential to store for the user.',
    examples: [{ credential: { key: 'example-api-key-not-real' }, config: { subdomain: 'acme' } }],
  });

export const disconnectedSchema = z
  .object({ revoked: z.boolean().describe('Whether the provider confirmed the revocation (RFC 7009); the connection is deleted either way.') })
  .meta({ id: 'Disconnected', description: 'The connection is gone; whether the provider confirmed the revocation.', examples: [{ revoked: true }] });

export const END_USER_HEADER = 'latchkey-end-user';

export const connectionListQuery = z.strictObject({
  endUserId: z.string({ error: 'must be a string' }).min(1).max(255).optional().describe('Only the connections of this end user.'),
  connectorId: connectorIdSchema.optional().describe('Only the connections of this connector.'),
  limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(1000).optional(),
  after: z.string().max(600).optional().describe('The `next` of the previous page.'),
});

export const connectorConnectionsQuery = connectionListQuery.omit({ connectorId: true });

export const connectionPageSchema = z.object({
  items: z.array(connectionSchema),
  next: z.string().optional().describe('Pass as `after` for the next page; absent on the last page.'),
}).meta({
  description: 'A page of connections (never their tokens).',
  examples: [{ items: [CONNECTION_EXAMPLE], next: `per-user:${ID.connector}:end-user:customer-42` }],
});
