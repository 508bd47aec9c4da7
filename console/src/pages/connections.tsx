import { useState } from 'preact/hooks';
import { api, asApiError, listAll, query } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission } from '../components/alert';
import { Field, fieldMessage } from '../components/field';
import { Pager, usePager } from '../components/pager';
import { when } from '../format';
import { href } from '../router';
import type { Connection, Connector, Me, Page } from '../types';
import { useLoad } from '../use-load';

const PAGE_SIZE = 25;

interface Filters {
  endUserId: string;
  connectorId: string;
}

const NO_FILTERS: Filters = { endUserId: '', connectorId: '' };

const STATUS_LABELS: Record<Connection['status'], string> = {
  active: 'connected',
  degraded: 'degraded',
  needs_reauthorization: 'needs re-authorization',
};

/** Whose connection it is, in words. */
function owner(connection: Connection, me: Me): string {
  if (connection.endUserId !== null) return `end user ${connection.endUserId}`;
  if (connection.userId === null) return 'shared';
  return connection.userId === me.user.id ? 'you' : `user ${connection.userId}`;
}

/** The connections of the application's end users (and the rest), filtered by end user and connector, page by page. */
export function ConnectionsPage({ me }: { me: Me }) {
  const allowed = me.permissions.includes('connectors:read');
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const pager = usePager();
  const connectors = useLoad(() => (allowed ? listAll<Connector>('/connectors') : Promise.resolve([])), [allowed]);
  const page = useLoad(
    () =>
      allowed
        ? api<Page<Connection>>('GET', `/connections${query({ endUserId: filters.endUserId.trim(), connectorId: filters.connectorId, limit: PAGE_SIZE, after: pager.cursor })}`)
        : Promise.resolve({ items: [] }),
    [allowed, filters, pager.cursor],
  );
  const loadError = page.error ?? connectors.error;

  if (!allowed) {
    return (
      <>
        <h1>Connections</h1>
        <NeedsPermission permission="connectors:read" what="see connections" />
      </>
    );
  }

  const names = new Map((connectors.data ?? []).map((c) => [c.id, c.name]));
  const filtered = filters.endUserId !== '' || filters.connectorId !== '';
  const apply = (event: Event) => {
    event.preventDefault();
    pager.reset();
    setFilters({ ...draft });
  };
  const clear = () => {
    pager.reset();
    setDraft(NO_FILTERS);
    setFilters(NO_FILTERS);
  };
  const endUserError = fieldMessage('End user ID', page.error?.field('endUserId'));
  const connectorError = fieldMessage('Connector', page.error?.field('connectorId'));
  const rows = page.data?.items ?? [];

  return (
    <>
      <h1>Connections</h1>
      <p class="lead">
        The accounts connected through your connectors: your application's end users (connected on the hosted connect page), users of this tenant, and the shared
        connection of each shared connector. Tokens are never shown here.
      </p>
      <form class="inline-form filters" onSubmit={apply} noValidate aria-label="Filter connections">
        <Field id="filter-end-user" label="End user ID" hint="The id your application gave the end user." error={endUserError}>
          {(aria) => <input {...aria} name="endUserId" maxLength={255} value={draft.endUserId} onInput={(e) => setDraft({ ...draft, endUserId: e.currentTarget.value })} />}
        </Field>
        <Field id="filter-connector" label="Connector" error={connectorError}>
          {(aria) => (
            <select {...aria} name="connectorId" value={draft.connectorId} onChange={(e) => setDraft({ ...draft, connectorId: e.currentTarget.value })}>
              <option value="">Every connector</option>
              {(connectors.data ?? []).map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" disabled={page.loading}>
          Apply filters
        </button>
        {filtered && (
          <button type="button" class="secondary" onClick={clear}>
            Clear filters
          </button>
        )}
      </form>
      {loadError !== undefined && endUserError === undefined && connectorError === undefined && <ErrorAlert>{asApiError(loadError).message}</ErrorAlert>}
      <section aria-labelledby="connections-title" aria-busy={page.loading}>
        <h2 id="connections-title">{filtered ? 'Matching connections' : 'All connections'}</h2>
        {page.loading && page.data === undefined && <p class="loading">Loading connections…</p>}
        {page.data !== undefined && rows.length === 0 && pager.page === 1 && (
          <EmptyState title={filtered ? 'No connection matches these filters' : 'No connections yet'}>
            {filtered ? (
              <p>
                Check the end user's id (it must match exactly), pick another connector, or{' '}
                <button type="button" class="secondary" onClick={clear}>
                  clear the filters
                </button>
                .
              </p>
            ) : (
              <p>
                End users connect their accounts on the hosted connect page: your application creates a connect session (<code>POST /api/v1/connect-sessions</code>) and sends
                the end user to its URL. To connect an account yourself, go to <a href={href('/connectors')}>Connectors</a>.
              </p>
            )}
          </EmptyState>
        )}
        {rows.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Owner</th>
                  <th scope="col">Connector</th>
                  <th scope="col">Status</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Token expires</th>
                  <th scope="col">Last refresh</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((c) => (
                  <tr key={c.id}>
                    <th scope="row">{owner(c, me)}</th>
                    <td>{names.get(c.connectorId) ?? c.connectorId}</td>
                    <td>
                      <span class={`badge ${STATUS_LABELS[c.status].replace(/\W+/g, '-')}`} data-status>
                        {STATUS_LABELS[c.status]}
                      </span>
                      {c.lastRefreshError !== null && <div class="field-error">Last refresh failed: {c.lastRefreshError}</div>}
                    </td>
                    <td>{c.scopes.length === 0 ? '—' : c.scopes.join(' ')}</td>
                    <td>{when(c.expiresAt, 'does not expire')}</td>
                    <td>{when(c.lastRefreshAt)}</td>
                    <td>{when(c.updatedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager
          label="Connection pages"
          page={pager.page}
          hasNext={page.data?.next !== undefined}
          busy={page.loading}
          onPrevious={pager.previous}
          onNext={() => page.data?.next !== undefined && pager.next(page.data.next)}
        />
      </section>
    </>
  );
}
