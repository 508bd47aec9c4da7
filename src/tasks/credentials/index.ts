export { createCredentialStrategy } from './strategies.js';
export type { CredentialStrategyOptions } from './strategies.js';
export { CredentialInvalidator } from './invalidation.js';
export type { CredentialInvalidatorOptions, InvalidationReport } from './invalidation.js';
export { createHttpCredentialIssuer } from './http-issuer.js';
export type { HttpCredentialIssuerOptions } from './http-issuer.js';
export { TASK_SECRETS_TYPE } from './secrets.js';
export type {
  ChosenCredential,
  CredentialKind,
  CredentialRef,
  CredentialStrategy,
  ExternalCredentialIssuer,
  GrantRequest,
  InvalidationOutcome,
  QueuedCredential,
  RunAs,
  TaskGrant,
  TaskSecrets,
  UserScope,
} from './types.js';
