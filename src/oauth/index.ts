// The OAuth module. Tokens and connections:
export { CONNECTION_TYPE, CONNECTION_STATUSES, connectionId, createConnectionStore, isEndUser, isEndUserId } from './connections.js';
export type { ConnectionStore, ConnectionStoreOptions, ConnectionView, ConnectionPage, ConnectionStatus, ConnectionListOptions, ConnectionOwner, EndUserRef, SaveConnectionOptions, TokenSet } from './connections.js';
export { createTokenClient } from './token-client.js';
export { refreshExpiringConnections } from './proactive-refresh.js';
export type { ProactiveRefreshOptions, ProactiveRefreshReport } from './proactive-refresh.js';
export type { TokenClient, TokenClientOptions, AccessToken } from './token-client.js';
export { clientAuthentication } from './resolved-client.js';
export type { ResolvedClient } from './resolved-client.js';
export { createClientResolver } from './client-resolver.js';
export { createUserCredentials } from './user-credentials.js';
export type { UserCredentials, UserCredentialsOptions } from './user-credentials.js';
export { assembleOAuth } from './assemble.js';
export type { AssembledOAuth, OAuthAssemblyOptions } from './assemble.js';
export type { BackoffOptions } from './refresh.js';
export type { ConnectionErrorCode } from './tokens-errors.js';
export type { ConnectionEvent, ConnectionEventSink, ConnectionEventType } from './connection-events.js';
// Authorization code flow (authorize + callback) and its state store:
export { createOAuthFlow, CALLBACK_PATH } from './flow.js';
export type { OAuthFlow, OAuthFlowOptions, AuthorizeSubject, AuthorizeOptions, AuthorizeResult, CallbackResult, CallbackOptions } from './flow.js';
export { CALLBACK_FAILURE_CODES } from './flow-failures.js';
export type { CallbackFailureCode } from './flow-failures.js';
export { checkReturnTo } from './flow-return-to.js';
export { createServerResolver } from './flow-server.js';
export type { ServerMetadata, ServerResolver } from './flow-server.js';
export { toTokenSet } from './flow-tokens.js';
export { OAUTH_STATE_TYPE, createOAuthStateStore, stateObjectId, isStateValue } from './state.js';
export type { OAuthState, OAuthStateStore, OAuthStateStoreOptions } from './state.js';
