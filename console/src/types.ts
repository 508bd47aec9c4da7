// The shapes the console reads from the HTTP API (/api/v1), as its routes declare them.

export type Permission = string;

export interface Me {
  tenant: { id: string; name: string };
  user: { id: string; username: string };
  apiKey: { id: string; name: string; masked: string } | null;
  permissions: Permission[];
}

export type AuthType = 'none' | 'api_key' | 'basic' | 'bearer' | 'oauth_client_credentials' | 'oauth_authorization_code';
export type TokenMode = 'shared' | 'per_user';

export interface Connector {
  id: string;
  name: string;
  provider: string;
  authType: AuthType;
  tokenMode: TokenMode;
  config: Record<string, string>;
  redirectUri: string | null;
  allowedReturnOrigins: string[];
  secrets: Partial<Record<string, { set: boolean }>>;
  revision: number;
  createdAt: string;
  updatedAt: string;
}

export interface ProviderField {
  name: string;
  location: 'config' | 'secrets';
  secret: boolean;
  required: boolean;
  description: string;
  authTypes: AuthType[];
  schema: { type: 'string'; format?: 'uri'; minLength: number; maxLength: number; pattern?: string; default?: string; writeOnly?: true };
}

export interface Provider {
  id: string;
  name: string;
  docsUrl: string;
  authTypes: AuthType[];
  defaultScopes: string[];
  fields: ProviderField[];
}

export type ConnectionStatus = 'active' | 'degraded' | 'needs_reauthorization';

export interface Connection {
  id: string;
  connectorId: string;
  userId: string | null;
  endUserId: string | null;
  status: ConnectionStatus;
  scopes: string[];
  expiresAt: string | null;
  lastRefreshAt: string | null;
  lastRefreshError: string | null;
  backoffUntil: string | null;
  updatedAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  masked: string;
  ownerId: string;
  roles: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  rateLimit: { limit: number; windowMs: number } | null;
  credits: { remaining: number; refill: { amount: number; intervalMs: number } | null } | null;
}

export interface IssuedApiKey {
  key: string;
  apiKey: ApiKey;
}

export interface Page<T> {
  items: T[];
  next?: string;
}
