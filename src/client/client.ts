import { apiKeys } from './resources/api-keys.js';
import { audit, me } from './resources/audit.js';
import { connections, connectSessions, tokens } from './resources/connections.js';
import { connectors, providers } from './resources/connectors.js';
import { webhooks } from './resources/webhooks.js';
import { tasks } from './resources/tasks.js';
import { proxy } from './proxy.js';
import { createTransport, type LatchkeyClientOptions, type Transport } from './transport.js';

/**
 * A typed client of the Latchkey HTTP API, one property per resource. Every method answers the
 * response's data, or throws a `LatchkeyApiError` (an error answer, with its `code`) or a
 * `LatchkeyNetworkError` (no answer). A resource group is a function of the transport
 * (`resources/*.ts`) given one line here.
 *
 * @example
 * const latchkey = new LatchkeyClient({ baseUrl: 'https://latchkey.example.com', apiKey: process.env.LATCHKEY_API_KEY });
 * const { items } = await latchkey.connectors.list();
 */
export class LatchkeyClient {
  readonly #transport: Transport;
  readonly apiKeys;
  readonly connectors;
  readonly providers;
  readonly connections;
  readonly connectSessions;
  readonly tokens;
  readonly webhooks;
  readonly tasks;
  readonly audit;
  readonly me;
  /** A `fetch` through a connector; see {@link proxy}. */
  readonly proxy;

  constructor(options: LatchkeyClientOptions) {
    const t = createTransport(options);
    this.#transport = t;
    this.apiKeys = apiKeys(t);
    this.connectors = connectors(t);
    this.providers = providers(t);
    this.connections = connections(t);
    this.connectSessions = connectSessions(t);
    this.tokens = tokens(t);
    this.webhooks = webhooks(t);
    this.tasks = tasks(t);
    this.audit = audit(t);
    this.me = me(t);
    this.proxy = proxy(t);
  }

  /** Latchkey's URL, as given (without trailing slashes). */
  get baseUrl(): string {
    return this.#transport.baseUrl;
  }
}
