import * as oauth from 'oauth4webapi';

/** What the token client needs to know of a connector: endpoints, credentials, how to send them. */
export interface ResolvedClient {
  connectorId: string;
  tokenMode: 'shared' | 'per_user';
  authType: 'oauth_authorization_code' | 'oauth_client_credentials';
  tokenUrl: string;
  /** RFC 7009 endpoint; without one, `disconnect` only deletes. */
  revocationUrl?: string;
  /** Needed when the provider returns an id_token on refresh (its `iss` is checked against it). */
  issuer?: string;
  clientId: string;
  /** Absent for a public client. */
  clientSecret?: string;
  clientAuthentication: 'client_secret_basic' | 'client_secret_post';
  /** Requested by the client credentials grant. */
  scopes: string[];
  scopeSeparator: string;
  /** Extra parameters of every token request (the template's token parameters). */
  tokenParams: Record<string, string>;
}

/**
 * The client's credentials, sent the way the provider's template says (the authorization code
 * exchange and the token client both use this).
 */
export function clientAuthentication(method: ResolvedClient['clientAuthentication'], secret: string | undefined): oauth.ClientAuth {
  if (secret === undefined) return oauth.None();
  return method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}
