import { api } from './api';
import { isConnectOutcome, RETURN_PATH, type ConnectOutcome } from './connect-outcome';

/** How a Connect click ended: the popup's outcome, or the window closed before it said anything. */
export type PopupResult = ConnectOutcome | { type: 'closed' } | { type: 'blocked' };

/**
 * Connects an account in a popup: opens the window at once (inside the click, so no blocker
 * stops it), starts the authorization code flow with the popup's page as `returnTo`, sends the
 * window to the provider, and waits for the page on Latchkey's origin to post the outcome. This
 * page closes the popup once it has read the outcome. Errors of the start itself are thrown.
 */
export async function connectInPopup(connectorId: string): Promise<PopupResult> {
  const popup = window.open('about:blank', `latchkey-connect-${connectorId}`, 'popup,width=560,height=720');
  if (popup === null) return { type: 'blocked' };
  try {
    const started = await api<{ authorizationUrl: string }>('POST', `/connectors/${connectorId}/oauth/authorize`, { returnTo: RETURN_PATH });
    popup.location.href = started.authorizationUrl;
  } catch (err) {
    popup.close();
    throw err;
  }
  return new Promise<PopupResult>((resolve) => {
    const finish = (result: PopupResult) => {
      removeEventListener('message', onMessage);
      clearInterval(watch);
      if (!popup.closed) popup.close();
      resolve(result);
    };
    const onMessage = (event: MessageEvent) => {
      if (event.origin !== location.origin || event.source !== popup || !isConnectOutcome(event.data)) return;
      finish(event.data);
    };
    // The popup never closes itself while this page listens, so "closed" means the person closed it.
    const watch = setInterval(() => {
      if (popup.closed) finish({ type: 'closed' });
    }, 400);
    addEventListener('message', onMessage);
  });
}
