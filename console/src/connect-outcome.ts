// The message the sign-in popup (connected.html) posts to the console that opened it.

export const CONNECT_MESSAGE = 'latchkey:console-connect';

export interface ConnectOutcome {
  type: typeof CONNECT_MESSAGE;
  ok: boolean;
  /** The callback's failure code when not ok (provider_error, invalid_state...). */
  error?: string;
  /** The callback's sentence when not ok: the provider's own error and description, as plain text. */
  message?: string;
}

/** The popup's path: the OAuth callback sends the browser here, with `?error=<code>` on failure. */
export const RETURN_PATH = '/console/connected.html';

const FAILURES: Record<string, string> = {
  provider_error: 'The provider did not authorize the connection (consent was refused or the request was rejected).',
  invalid_state: 'The sign-in expired or was already used; start connecting again.',
  browser_mismatch: 'The sign-in finished in another browser than the one that started it; start again here.',
  connector_unavailable: 'The connector can no longer be used; check its settings.',
  token_exchange_failed: 'The provider refused to issue tokens; check the connector\'s client id and secret.',
  provider_unavailable: 'The provider could not be reached; try again later.',
  invalid_provider_response: 'The provider answered with something Latchkey could not use.',
  internal_error: 'Latchkey could not store the connection; the server log has the details.',
};

/** One sentence for a failed connect: the callback's own (with the provider's words) when it sent one, else the code's. */
export function failureMessage(code: string | undefined, message?: string): string {
  if (message !== undefined && message.trim() !== '') return message.trim().slice(0, 500);
  return (code !== undefined ? FAILURES[code] : undefined) ?? 'Connecting failed; try again.';
}

export function isConnectOutcome(value: unknown): value is ConnectOutcome {
  const v = value as Partial<ConnectOutcome> | null;
  return typeof v === 'object' && v !== null && v.type === CONNECT_MESSAGE && typeof v.ok === 'boolean' && (v.message === undefined || typeof v.message === 'string');
}
