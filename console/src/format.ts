import type { ApiKey, AuthType, Connection } from './types';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A time as the reader's locale writes it; `never` for null. */
export function when(iso: string | null, never = 'never'): string {
  if (iso === null) return never;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A duration in words: 90000 is "1.5 minutes", 86400000 "1 day". */
export function duration(ms: number): string {
  const units: Array<[number, string]> = [
    [DAY, 'day'],
    [HOUR, 'hour'],
    [MINUTE, 'minute'],
    [SECOND, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size) {
      const n = Math.round((ms / size) * 10) / 10;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

export const AUTH_TYPE_LABELS: Record<AuthType, string> = {
  none: 'No authentication',
  api_key: 'API key',
  basic: 'Basic authentication',
  bearer: 'Bearer token',
  oauth_client_credentials: 'OAuth client credentials',
  oauth_authorization_code: 'OAuth sign-in (authorization code)',
};

/** What the connectors page says of a connector's connection. */
export type ConnectorState = 'connected' | 'degraded' | 'needs re-authorization' | 'not connected' | 'credentials stored' | 'no authentication';

export function connectorState(authType: AuthType, tokenMode: 'shared' | 'per_user', connection: Connection | undefined): ConnectorState {
  if (authType === 'none') return 'no authentication';
  // A shared API key, basic or bearer connector holds its credential; a per-user one holds each user's.
  if ((authType === 'api_key' || authType === 'basic' || authType === 'bearer') && tokenMode === 'shared') return 'credentials stored';
  if (connection === undefined) return 'not connected';
  if (connection.status === 'active') return 'connected';
  return connection.status === 'degraded' ? 'degraded' : 'needs re-authorization';
}

export type KeyState = 'active' | 'revoked' | 'expired';

export function keyState(key: ApiKey, now = Date.now()): KeyState {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && Date.parse(key.expiresAt) <= now) return 'expired';
  return 'active';
}

/** A key's limits in words: "100 requests per 1 minute; 5 credits left (+10 every 1 day)". */
export function limits(key: ApiKey): string {
  const parts: string[] = [];
  if (key.rateLimit) parts.push(`${key.rateLimit.limit} requests per ${duration(key.rateLimit.windowMs)}`);
  if (key.credits) {
    const refill = key.credits.refill ? ` (+${key.credits.refill.amount} every ${duration(key.credits.refill.intervalMs)})` : '';
    parts.push(`${key.credits.remaining} credits left${refill}`);
  }
  return parts.length === 0 ? 'none' : parts.join('; ');
}

const ACRONYMS: Record<string, string> = { api: 'API', id: 'ID', url: 'URL', uri: 'URI', oauth: 'OAuth' };

/** A field name in words: "clientId" → "Client ID", "apiBaseUrl" → "API base URL". */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .toLowerCase()
    .split(' ')
    .map((word) => ACRONYMS[word] ?? word);
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
