// The connectors module: the provider catalog (templates shipped as data in providers/*.json) and
// its directory view, connector config validation, template resolution, the connector service and
// the credentials of api_key, basic and bearer connectors.
export {
  AUTH_TYPES,
  OAUTH_AUTH_TYPES,
  PER_USER_AUTH_TYPES,
  API_KEY_LOCATIONS,
  isOAuthAuthType,
  providerTemplateSchema,
  parseUrlTemplate,
  urlProblem,
} from './provider-schema.js';
export type {
  AuthType,
  ProviderTemplate,
  ConfigField,
  ApiKeyPlacement,
  ApiKeyTemplate,
  OAuthTemplate,
  ScopeSeparator,
  ClientAuthentication,
  PlaceholderPosition,
  UrlTemplatePart,
} from './provider-schema.js';
export {
  BUNDLED_PROVIDERS,
  loadCatalog,
  parseProviderTemplate,
  resolveProvider,
  validateConnectorConfig,
  endUserFieldsOf,
  validateEndUserConfig,
} from './catalog.js';
export type {
  Catalog,
  ProviderSource,
  ConnectorConfig,
  ConfigFieldError,
  ConfigValidation,
  ResolvedProvider,
  ResolvedOAuth,
  ResolvedOAuthEndpoints,
  ResolvedOAuthDiscovery,
} from './catalog.js';
export { CONNECTOR_TYPE, createConnectorService, resolveForEndUser } from './connectors.js';
export type { ConnectorService, ConnectorServiceOptions, ConnectorView, ConnectorPage, ResolvedConnector } from './connectors.js';
export { TOKEN_MODES, SECRET_NAMES, SECRETS_BY_AUTH_TYPE, connectorSecretsOf } from './connectors-input.js';
export type { TokenMode, SecretName, ConnectorSecrets, CreateConnectorInput, UpdateConnectorInput } from './connectors-input.js';
export {
  STATIC_CREDENTIAL_AUTH_TYPES,
  USER_CREDENTIAL_FIELDS,
  connectorCredentialSchema,
  credentialOf,
  credentialWith,
  isStaticCredentialAuthType,
  parseUserCredential,
} from './credentials.js';
export type { ConnectorCredential, StaticCredentialAuthType, UserCredential } from './credentials.js';
export { createProviderDirectory } from './provider-directory.js';
export type { ProviderDirectory, ProviderView, ProviderField, ProviderFieldSchema } from './provider-directory.js';
