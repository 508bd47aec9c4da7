// The proxy: a caller's request, sent to a connector's API with the connector's credential.
export { createProxy, targetUrl } from './proxy.js';
export type { Proxy, ProxyOptions, ProxyRequest, ProxyResponse } from './proxy.js';
