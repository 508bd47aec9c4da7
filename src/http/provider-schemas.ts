import { z } from 'zod';
import { AUTH_TYPES } from '../connectors/index.js';

// Response schemas of the provider catalog routes (GET /providers, GET /providers/{id}).

/** Any string: an unknown id is answered by the service with the nearest ids, not by a 400. */
export const providerParams = z.object({
  id: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(200, { error: 'is too long' }),
});

const fieldSchema = z
  .object({
    type: z.literal('string'),
    format: z.literal('uri').optional(),
    minLength: z.number().int(),
    maxLength: z.number().int(),
    pattern: z.string().optional().describe('An anchored regular expression (Unicode mode).'),
    default: z.string().optional(),
    writeOnly: z.literal(true).optional(),
  })
  .describe('The JSON Schema of the value.');

const CLIENT_ID_FIELD = {
  name: 'clientId',
  location: 'config',
  secret: false,
  required: true,
  endUser: false,
  description: 'The OAuth client id of your app registration.',
  authTypes: ['oauth_authorization_code'],
  schema: { type: 'string', minLength: 1, maxLength: 2048 },
};

const CLIENT_SECRET_FIELD = {
  name: 'clientSecret',
  location: 'secrets',
  secret: true,
  required: true,
  endUser: false,
  description: 'The OAuth client secret of your app registration.',
  authTypes: ['oauth_authorization_code'],
  schema: { type: 'string', minLength: 1, maxLength: 8192, writeOnly: true },
};

/** GitHub as the catalog has it (two of its fields). */
export const PROVIDER_EXAMPLE = {
  id: 'github',
  name: 'GitHub',
  docsUrl: 'https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps',
  authTypes: ['oauth_authorization_code', 'bearer'],
  defaultScopes: ['read:user', 'user:email'],
  fields: [CLIENT_ID_FIELD, CLIENT_SECRET_FIELD],
};

export const providerFieldSchema = z
  .object({
    name: z.string(),
    location: z.enum(['config', 'secrets']).describe('Where the value goes in the connector\'s create body.'),
    secret: z.boolean().describe('A credential: mask it when it is typed in. Every `secrets` value is stored encrypted and never shown again.'),
    required: z.boolean().describe('Required for the auth types it applies to (per-user api_key, basic and bearer connectors hold no secret: each user gives their own).'),
    endUser: z.boolean().describe('A per-user connector may leave it unset; each end user then gives it when connecting (an account subdomain).'),
    description: z.string(),
    authTypes: z.array(z.enum(AUTH_TYPES)).describe('The auth types the field applies to.'),
    schema: fieldSchema,
  })
  .meta({ id: 'ProviderField', description: 'A field of a provider\'s configuration.', examples: [CLIENT_ID_FIELD] });

export const providerSchema = z
  .object({
    id: z.string().describe('What a connector\'s `provider` names.'),
    name: z.string().describe('The display name.'),
    docsUrl: z.string(),
    authTypes: z.array(z.enum(AUTH_TYPES)),
    defaultScopes: z.array(z.string()).describe('Asked for when a connector sets no `scopes`; empty without OAuth.'),
    fields: z.array(providerFieldSchema),
  })
  .meta({ id: 'Provider', description: 'A provider of the catalog.', examples: [PROVIDER_EXAMPLE] });
