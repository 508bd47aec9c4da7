import { useState } from 'preact/hooks';
import { api, ApiError, listAll } from '../api';
import { EmptyState, ErrorAlert, StatusLine } from '../components/alert';
import { Dialog } from '../components/dialog';
import { failureMessage } from '../connect-outcome';
import { connectInPopup } from '../connect-popup';
import { AUTH_TYPE_LABELS, connectorState, when } from '../format';
import { href } from '../router';
import type { Connection, Connector, Me } from '../types';
import { useLoad } from '../use-load';

interface Row {
  connector: Connector;
  /** Yours for a per-user connector; the one shared connection otherwise. */
  connection: Connection | undefined;
}

async function loadRows(me: Me): Promise<Row[]> {
  const [connectors, connections] = await Promise.all([listAll<Connector>('/connectors'), listAll<Connection>('/connections')]);
  const byId = new Map(connections.map((c) => [c.id, c]));
  return connectors.map((connector) => ({
    connector,
    connection: byId.get(connector.tokenMode === 'shared' ? `shared:${connector.id}` : `per-user:${connector.id}:${me.user.id}`),
  }));
}

const isOAuth = (c: Connector) => c.authType === 'oauth_authorization_code' || c.authType === 'oauth_client_credentials';

/** Connectors with the status of their connection; connect, refresh, disconnect. */
export function ConnectorsPage({ me }: { me: Me }) {
  const rows = useLoad(() => loadRows(me), [me.user.id]);
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [disconnecting, setDisconnecting] = useState<Connector | undefined>();
  const canWrite = me.permissions.includes('connectors:write');
  const canUse = me.permissions.includes('connectors:use');

  const working = (id: string, label: string | undefined) =>
    setBusy((b) => {
      const next = { ...b };
      if (label === undefined) delete next[id];
      else next[id] = label;
      return next;
    });
  const problem = (id: string, message: string | undefined) =>
    setErrors((e) => {
      const next = { ...e };
      if (message === undefined) delete next[id];
      else next[id] = message;
      return next;
    });

  const run = async (connector: Connector, label: string, action: () => Promise<string>) => {
    working(connector.id, label);
    problem(connector.id, undefined);
    try {
      setStatus(await action());
    } catch (err) {
      problem(connector.id, err instanceof ApiError ? err.message : 'That did not work; try again.');
    } finally {
      working(connector.id, undefined);
      await rows.reload();
    }
  };

  const connect = (connector: Connector) =>
    run(connector, 'Waiting for the sign-in window…', async () => {
      const result = await connectInPopup(connector.id);
      if (result.type === 'blocked') throw new ApiError('blocked', 'The browser blocked the sign-in window; allow pop-ups for this site and try again.', 0);
      // Also when the popup ended on another origin than this page's (a public URL that differs
      // from the address in the browser): the status reloaded below says whether it connected.
      if (result.type === 'closed') return `The sign-in window for “${connector.name}” was closed.`;
      if (!result.ok) throw new ApiError(result.error ?? 'failed', `Connecting failed: ${failureMessage(result.error, result.message)}`, 0);
      return `“${connector.name}” is connected.`;
    });

  const refresh = (connector: Connector) =>
    run(connector, 'Refreshing…', async () => {
      const connection = await api<Connection>('POST', `/connectors/${connector.id}/connection/_refresh`);
      return connection.status === 'active' ? `“${connector.name}” was refreshed.` : `“${connector.name}” was refreshed; its status is ${connection.status}.`;
    });

  return (
    <>
      <h1>Connectors</h1>
      <p class="lead">A connector holds how to reach one third-party API: its provider, credentials and, once connected, the account's tokens.</p>
      {canWrite && (
        <p>
          <a class="button" href={href('/connectors/new')}>
            Create connector
          </a>
        </p>
      )}
      <StatusLine message={status} />
      {rows.error !== undefined && <ErrorAlert>{rows.error.message}</ErrorAlert>}
      {rows.data === undefined && rows.error === undefined && <p class="loading">Loading connectors…</p>}
      {rows.data !== undefined && rows.data.length === 0 && (
        <EmptyState title="No connectors yet">
          <p>
            {canWrite ? (
              <>
                <a href={href('/connectors/new')}>Create a connector</a> from the provider catalog (GitHub, Google, Slack, any OpenID Connect or OAuth 2.0 server…), then connect an account.
              </>
            ) : (
              'Ask an administrator to create one: you need the connectors:write permission.'
            )}
          </p>
        </EmptyState>
      )}
      {rows.data !== undefined && rows.data.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Provider</th>
                <th scope="col">Authentication</th>
                <th scope="col">Status</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rows.data.map(({ connector, connection }) => {
                const state = connectorState(connector.authType, connector.tokenMode, connection);
                const pending = busy[connector.id];
                const failed = errors[connector.id];
                const connectable = connector.authType === 'oauth_authorization_code' && canUse && (connector.tokenMode === 'per_user' || canWrite);
                return (
                  <tr key={connector.id} data-connector={connector.id}>
                    <th scope="row">
                      {canWrite ? <a href={href(`/connectors/${connector.id}`)}>{connector.name}</a> : connector.name}
                      {connector.tokenMode === 'per_user' && <div class="hint">one connection per user: yours is shown</div>}
                    </th>
                    <td>{connector.provider}</td>
                    <td>{AUTH_TYPE_LABELS[connector.authType]}</td>
                    <td>
                      <span class={`badge ${state.replace(/\W+/g, '-')}`} data-status>
                        {state}
                      </span>
                      {connection?.lastRefreshError && <div class="hint">Last refresh failed: {connection.lastRefreshError}</div>}
                      {connection && <div class="hint">Token expires {when(connection.expiresAt, 'never')}</div>}
                      {pending !== undefined && (
                        <div class="hint" aria-live="polite">
                          {pending}
                        </div>
                      )}
                      {failed !== undefined && (
                        <div class="field-error" role="alert">
                          {failed}
                        </div>
                      )}
                    </td>
                    <td class="actions">
                      {connectable && (
                        <button type="button" onClick={() => connect(connector)} disabled={pending !== undefined} aria-label={`${connection ? 'Reconnect' : 'Connect'} ${connector.name}`}>
                          {connection ? 'Reconnect' : 'Connect'}
                        </button>
                      )}
                      {connection && isOAuth(connector) && canUse && (
                        <button type="button" class="secondary" onClick={() => refresh(connector)} disabled={pending !== undefined} aria-label={`Refresh ${connector.name}`}>
                          Refresh
                        </button>
                      )}
                      {connection && (canUse || canWrite) && (
                        <button type="button" class="danger" onClick={() => setDisconnecting(connector)} disabled={pending !== undefined} aria-label={`Disconnect ${connector.name}`}>
                          Disconnect
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <Dialog title="Disconnect" open={disconnecting !== undefined} onClose={() => setDisconnecting(undefined)}>
        <p>
          Disconnect <strong>{disconnecting?.name}</strong>? Latchkey deletes the connection and asks the provider to revoke its tokens. Connect again to use it.
        </p>
        <div class="buttons">
          <button type="button" class="secondary" onClick={() => setDisconnecting(undefined)}>
            Cancel
          </button>
          <button
            type="button"
            class="danger"
            onClick={() => {
              const connector = disconnecting;
              setDisconnecting(undefined);
              if (connector)
                void run(connector, 'Disconnecting…', async () => {
                  const { revoked } = await api<{ revoked: boolean }>('DELETE', `/connectors/${connector.id}/connection`);
                  return revoked ? `“${connector.name}” is disconnected; the provider revoked its tokens.` : `“${connector.name}” is disconnected (the provider did not confirm revoking its tokens).`;
                });
            }}
          >
            Disconnect
          </button>
        </div>
      </Dialog>
    </>
  );
}
