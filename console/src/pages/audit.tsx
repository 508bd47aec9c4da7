import { useState } from 'preact/hooks';
import { api, type ApiError, asApiError, query } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission } from '../components/alert';
import { Field, fieldMessage } from '../components/field';
import { Pager, usePager } from '../components/pager';
import { when } from '../format';
import type { AuditEvent, Me, Page } from '../types';
import { useLoad } from '../use-load';

const PAGE_SIZE = 50;

interface Filters {
  action: string;
  actor: string;
  target: string;
  /** `datetime-local` values: the reader's local time, no zone. */
  since: string;
  until: string;
}

const NO_FILTERS: Filters = { action: '', actor: '', target: '', since: '', until: '' };

const LABELS: Record<keyof Filters, string> = { action: 'Action', actor: 'Actor', target: 'Target', since: 'From', until: 'Until' };

/** A `datetime-local` value as the API's UTC time; '' stays unset. */
function utc(local: string): string | undefined {
  if (local === '') return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? local : new Date(ms).toISOString();
}

/** The audit log, newest first, filtered by action, actor, target and time range, page by page. */
export function AuditPage({ me }: { me: Me }) {
  const allowed = me.permissions.includes('audit:read');
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const pager = usePager();
  const page = useLoad(
    () =>
      allowed
        ? api<Page<AuditEvent>>(
            'GET',
            `/audit${query({ action: filters.action.trim(), actor: filters.actor.trim(), target: filters.target.trim(), since: utc(filters.since), until: utc(filters.until), limit: PAGE_SIZE, before: pager.cursor })}`,
          )
        : Promise.resolve({ items: [] }),
    [allowed, filters, pager.cursor],
  );

  if (!allowed) {
    return (
      <>
        <h1>Audit log</h1>
        <NeedsPermission permission="audit:read" what="read the audit log" />
      </>
    );
  }

  const error: ApiError | undefined = page.error;
  const fieldError = (name: keyof Filters) => fieldMessage(LABELS[name], error?.field(name));
  const anyFieldError = (Object.keys(LABELS) as Array<keyof Filters>).some((name) => fieldError(name) !== undefined);
  const filtered = Object.values(filters).some((v) => v !== '');
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
  const text = (name: 'action' | 'actor' | 'target', hint: string) => (
    <Field id={`audit-${name}`} label={LABELS[name]} hint={hint} error={fieldError(name)}>
      {(aria) => <input {...aria} name={name} maxLength={300} value={draft[name]} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} />}
    </Field>
  );
  const time = (name: 'since' | 'until', hint: string) => (
    <Field id={`audit-${name}`} label={LABELS[name]} hint={hint} error={fieldError(name)}>
      {(aria) => <input {...aria} name={name} type="datetime-local" step={1} value={draft[name]} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} />}
    </Field>
  );
  const rows = page.data?.items ?? [];

  return (
    <>
      <h1>Audit log</h1>
      <p class="lead">Every change in this tenant, and every token or credential handed out, newest first. Times are in your browser's time zone.</p>
      <form class="inline-form filters" onSubmit={apply} noValidate aria-label="Filter the audit log">
        {text('action', 'Such as api_key.revoked.')}
        {text('actor', 'user:<id>, api_key:<id>, end_user:<id> or system.')}
        {text('target', 'An id: a key, a user, a connector…')}
        {time('since', 'Events at or after this time.')}
        {time('until', 'Events before this time.')}
        <button type="submit" disabled={page.loading}>
          Apply filters
        </button>
        {filtered && (
          <button type="button" class="secondary" onClick={clear}>
            Clear filters
          </button>
        )}
      </form>
      {error !== undefined && !anyFieldError && <ErrorAlert>{asApiError(error).message}</ErrorAlert>}
      <section aria-labelledby="events-title" aria-busy={page.loading}>
        <h2 id="events-title">{filtered ? 'Matching events' : 'Events'}</h2>
        {page.loading && page.data === undefined && <p class="loading">Loading events…</p>}
        {page.data !== undefined && rows.length === 0 && pager.page === 1 && (
          <EmptyState title={filtered ? 'No event matches these filters' : 'No events yet'}>
            {filtered ? (
              <p>
                Widen the time range or check the spelling (actions and actors match exactly), or{' '}
                <button type="button" class="secondary" onClick={clear}>
                  clear the filters
                </button>
                .
              </p>
            ) : (
              <p>Events appear here as soon as anyone changes something: create an API key or a connector to see the first one.</p>
            )}
          </EmptyState>
        )}
        {rows.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Action</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Target</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((e) => (
                  <tr key={e.id}>
                    <td>{when(e.at)}</td>
                    <th scope="row">
                      <code>{e.action}</code>
                    </th>
                    <td>
                      <code>{e.actor}</code>
                    </td>
                    <td>{e.target === null ? '—' : <code>{e.target}</code>}</td>
                    <td>{e.details === null ? '—' : <pre class="details">{JSON.stringify(e.details, null, 1)}</pre>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager
          label="Audit log pages"
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
