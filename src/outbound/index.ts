// The outbound-HTTP module: every request Latchkey makes (discovery, token exchange, refresh,
// revocation) goes through it.
export { createOutbound } from './outbound.js';
export type { Outbound, OutboundOptions, OAuthRequestOptions, EgressCheck } from './outbound.js';
export { createDiscoveryCache } from './discovery.js';
export type { DiscoveryCache } from './discovery.js';
export { isLoopbackHost } from './loopback.js';
