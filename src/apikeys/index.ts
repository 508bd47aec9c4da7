// The API key module: key format, keyed hashing, the service (create, list, roll, revoke), the
// verifier with its invalidated cache, and the usage gate (rate limits and credits).
export { API_KEY_PATTERN, API_KEY_PREFIX, API_KEY_LENGTH, generateApiKey, parseApiKey, maskApiKey, lastFour } from './format.js';
export type { ParsedApiKey, GeneratedApiKey } from './format.js';
export { API_KEY_PEPPER_TYPE, ApiKeyHasher, keyedHash, hashesEqual } from './hashing.js';
export { createApiKeyService } from './service.js';
export type { ApiKeyService, ApiKeyServiceOptions, CreateApiKeyOptions, IssuedApiKey, ApiKeyPage } from './service.js';
export type { CreateApiKeyInput, RollApiKeyInput, ListApiKeysInput } from './validation.js';
export type { ApiKeyView, RateLimit, Credits } from './view.js';
export { ApiKeyVerifier } from './verifier.js';
export type { ApiKeyVerifierOptions, VerifyOptions, VerifyResult, VerifyCode } from './verifier.js';
export { createApiKeys } from './api-keys.js';
export type { ApiKeys, ApiKeysOptions } from './api-keys.js';
export { createUsageGate } from './usage.js';
export type { UsageGate, UsageGateOptions, UsagePolicy, UsageDecision } from './usage.js';
