// The outbound-HTTP module: every request Latchkey makes (discovery, token exchange, refresh,
// revocation, and later the proxy and webhook deliveries) goes through it, behind the egress policy.
export { createOutbound } from './outbound.js';
export type { Outbound, OutboundOptions, OAuthRequestOptions } from './outbound.js';
export { createEgressPolicy } from './egress-policy.js';
export type { EgressPolicy } from './egress-policy.js';
export { createEgressAgent } from './egress-agent.js';
export type { EgressAgentOptions, OpenConnection, Resolve, ResolvedAddress } from './egress-agent.js';
export type { OutboundLimits } from './guarded-fetch.js';
export type { StreamRequest, StreamResponse } from './stream-request.js';
export { Cancel, onAbort } from './cancel.js';
export type { CancelSignal } from './cancel.js';
export { createDiscoveryCache } from './discovery.js';
export type { DiscoveryCache } from './discovery.js';
export { isLoopbackHost } from './loopback.js';
