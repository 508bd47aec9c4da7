// End users and connect sessions: the hosted connect page's credential and its rules.
export { createConnectSessions, CONNECT_SESSION_TYPE, CONNECT_PAGE_PATH } from './sessions.js';
export type { ConnectSessions, ConnectSessionsOptions, ConnectSession, CreatedConnectSession, ConnectSessionInput } from './sessions.js';
