// The connectors module. So far: the provider catalog (templates shipped as data in providers/*.json),
// connector config validation, and template resolution.
export {
  AUTH_TYPES,
  OAUTH_AUTH_TYPES,
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
export { CONNECTOR_TYPE, createConnectorService } from './connectors.js';
export type { ConnectorService, ConnectorServiceOptions, ConnectorView, ConnectorPage, ResolvedConnector } from './connectors.js';
export { TOKEN_MODES, SECRET_NAMES, SECRETS_BY_AUTH_TYPE } from './connectors-input.js';
export type { TokenMode, SecretName, ConnectorSecrets, CreateConnectorInput, UpdateConnectorInput } from './connectors-input.js';
