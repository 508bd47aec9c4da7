import { CONNECT_MESSAGE, failureMessage, type ConnectOutcome } from './connect-outcome';

// The sign-in popup's last page: tells the console that opened it how connecting went (only a
// window of this origin can receive it). Opened on its own, it says so in words.
const query = new URLSearchParams(location.search);
const error = query.get('error') ?? undefined;
const description = query.get('error_description') ?? undefined;
const outcome: ConnectOutcome =
  error === undefined ? { type: CONNECT_MESSAGE, ok: true } : { type: CONNECT_MESSAGE, ok: false, error, ...(description !== undefined ? { message: description.slice(0, 500) } : {}) };

const title = document.getElementById('title');
const message = document.getElementById('message');
if (title) title.textContent = outcome.ok ? 'Account connected' : 'Connecting failed';
if (message) message.textContent = outcome.ok ? 'The account is connected. You can close this window.' : `${failureMessage(error, outcome.message)} You can close this window.`;

// The console closes this window once it has the message (closing here could race its check
// for a window closed by hand).
const opener = window.opener as Window | null;
if (opener) opener.postMessage(outcome, location.origin);
