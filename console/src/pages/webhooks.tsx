import { useState } from 'preact/hooks';
import { api, type ApiError, asApiError, listAll, query } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission, StatusLine } from '../components/alert';
import { CheckboxGroup } from '../components/checkbox-group';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { IssuedKey } from '../components/issued-key';
import { when } from '../format';
import { WEBHOOK_EVENTS, type DeliveryStatus, type IssuedWebhookEndpoint, type Me, type WebhookDelivery, type WebhookEndpoint } from '../types';
import { useLoad } from '../use-load';
import { Confirm } from '../components/confirm';

const eventOptions = WEBHOOK_EVENTS.map((e) => ({ value: e, label: <code>{e}</code> }));
/** What a new endpoint starts with: the connection events (task events are for those who run tasks). */
const defaultEvents = (): string[] => WEBHOOK_EVENTS.filter((e) => e.startsWith('connection.'));

const SECRET_WHY = 'Latchkey keeps it encrypted to sign messages and never shows it again. Your receiver verifies every message with it (Standard Webhooks).';

type Issued = { title: string; secret: string; note?: string };

/** The fields of an endpoint form that the API can name in an error. */
function endpointErrors(error: ApiError | undefined) {
  const under = (prefix: string) => error?.fields.find((f) => f.path === prefix || f.path.startsWith(`${prefix}.`))?.message;
  const errors = { url: fieldMessage('URL', under('url')), events: fieldMessage('Events', under('events')), description: fieldMessage('Description', under('description')) };
  const general = error !== undefined && Object.values(errors).every((e) => e === undefined) ? error.message : undefined;
  return { ...errors, general };
}

/** Webhook endpoints (create with the secret shown once, edit, roll, delete) and their recent deliveries. */
export function WebhooksPage({ me }: { me: Me }) {
  const canRead = me.permissions.includes('webhooks:read');
  const canWrite = me.permissions.includes('webhooks:write');
  const endpoints = useLoad(() => (canRead ? listAll<WebhookEndpoint>('/webhooks') : Promise.resolve([])), [canRead]);
  const [issued, setIssued] = useState<Issued | undefined>();
  const [status, setStatus] = useState('');
  const [editing, setEditing] = useState<WebhookEndpoint | undefined>();
  const [rolling, setRolling] = useState<WebhookEndpoint | undefined>();
  const [deleting, setDeleting] = useState<WebhookEndpoint | undefined>();
  const [showing, setShowing] = useState<string | undefined>();

  if (!canRead) {
    return (
      <>
        <h1>Webhooks</h1>
        <NeedsPermission permission="webhooks:read" what="see webhooks" />
      </>
    );
  }
  const shown = endpoints.data?.find((e) => e.id === showing);

  return (
    <>
      <h1>Webhooks</h1>
      <p class="lead">
        Latchkey posts an event to each endpoint that asks for it when a connection is created, fails to refresh, needs re-authorization, recovers or is deleted, and when an attempt of a task succeeds or fails. Messages
        are signed (Standard Webhooks) and retried until the endpoint answers 2xx.
      </p>
      {issued !== undefined && (
        <IssuedKey
          title={issued.title}
          apiKey={issued.secret}
          noun="signing secret"
          label="The signing secret"
          why={SECRET_WHY}
          {...(issued.note !== undefined ? { note: issued.note } : {})}
          onDone={() => setIssued(undefined)}
        />
      )}
      {canWrite && (
        <CreateEndpointForm
          onCreated={async (created) => {
            setIssued({ title: `The signing secret of ${created.endpoint.url}`, secret: created.secret });
            await endpoints.reload();
            setStatus(`Endpoint ${created.endpoint.url} created.`);
          }}
        />
      )}
      <StatusLine message={status} />
      <section aria-labelledby="endpoints-title">
        <h2 id="endpoints-title">Endpoints</h2>
        {endpoints.error !== undefined && <ErrorAlert>{endpoints.error.message}</ErrorAlert>}
        {endpoints.data === undefined && endpoints.error === undefined && <p class="loading">Loading endpoints…</p>}
        {endpoints.data !== undefined && endpoints.data.length === 0 && (
          <EmptyState title="No webhook endpoints yet">
            <p>
              {canWrite
                ? 'Add the https URL of your application that should hear about connections, and store the signing secret it is given.'
                : 'You may not add endpoints: ask an administrator for the webhooks:write permission.'}
            </p>
          </EmptyState>
        )}
        {endpoints.data !== undefined && endpoints.data.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Status</th>
                  <th scope="col">Secret made</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {endpoints.data.map((endpoint) => (
                  <tr key={endpoint.id}>
                    <th scope="row">
                      <code>{endpoint.url}</code>
                      {endpoint.description !== null && <div class="hint">{endpoint.description}</div>}
                    </th>
                    <td>{endpoint.events.join(', ')}</td>
                    <td>
                      <span class={`badge ${endpoint.enabled ? 'enabled' : 'disabled'}`}>{endpoint.enabled ? 'enabled' : 'disabled'}</span>
                    </td>
                    <td>
                      {when(endpoint.secretRolledAt)}
                      {endpoint.previousSecretExpiresAt !== null && <div class="hint">the previous secret signs too until {when(endpoint.previousSecretExpiresAt)}</div>}
                    </td>
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Deliveries of ${endpoint.url}`} aria-pressed={showing === endpoint.id} onClick={() => setShowing(showing === endpoint.id ? undefined : endpoint.id)}>
                        Deliveries
                      </button>
                      {canWrite && (
                        <>
                          <button type="button" class="secondary" aria-label={`Edit ${endpoint.url}`} onClick={() => setEditing(endpoint)}>
                            Edit
                          </button>
                          <button type="button" class="secondary" aria-label={`Roll secret of ${endpoint.url}`} onClick={() => setRolling(endpoint)}>
                            Roll secret
                          </button>
                          <button type="button" class="danger" aria-label={`Delete ${endpoint.url}`} onClick={() => setDeleting(endpoint)}>
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {shown !== undefined && <Deliveries key={shown.id} endpoint={shown} canWrite={canWrite} />}
      <Dialog title="Edit endpoint" open={editing !== undefined} onClose={() => setEditing(undefined)}>
        {editing !== undefined && (
          <EditEndpointForm
            key={editing.id}
            endpoint={editing}
            onClose={() => setEditing(undefined)}
            onSaved={async (saved) => {
              setEditing(undefined);
              await endpoints.reload();
              setStatus(`Endpoint ${saved.url} saved.`);
            }}
          />
        )}
      </Dialog>
      <Dialog title="Roll signing secret" open={rolling !== undefined} onClose={() => setRolling(undefined)}>
        {rolling !== undefined && (
          <Confirm
            action="Roll secret"
            busyLabel="Rolling…"
            danger={false}
            onClose={() => setRolling(undefined)}
            run={async () => {
              const rolled = await api<IssuedWebhookEndpoint>('POST', `/webhooks/${rolling.id}/_roll_secret`);
              setRolling(undefined);
              setIssued({ title: `The new signing secret of ${rolled.endpoint.url}`, secret: rolled.secret, note: 'For 24 hours messages are signed with the previous secret too, so your receiver can switch without losing one.' });
              await endpoints.reload();
              setStatus(`The secret of ${rolled.endpoint.url} was rolled.`);
            }}
          >
            A new signing secret for <code>{rolling.url}</code>. For 24 hours every message carries a signature under the old secret too.
          </Confirm>
        )}
      </Dialog>
      <Dialog title="Delete endpoint" open={deleting !== undefined} onClose={() => setDeleting(undefined)}>
        {deleting !== undefined && (
          <Confirm
            action="Delete endpoint"
            busyLabel="Deleting…"
            danger
            onClose={() => setDeleting(undefined)}
            run={async () => {
              await api('DELETE', `/webhooks/${deleting.id}`);
              setDeleting(undefined);
              if (showing === deleting.id) setShowing(undefined);
              await endpoints.reload();
              setStatus(`Endpoint ${deleting.url} deleted.`);
            }}
          >
            Delete <code>{deleting.url}</code> and its deliveries? Messages not yet delivered are dropped. This cannot be undone.
          </Confirm>
        )}
      </Dialog>
    </>
  );
}

function CreateEndpointForm({ onCreated }: { onCreated: (created: IssuedWebhookEndpoint) => Promise<void> }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(defaultEvents);
  const [description, setDescription] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const created = await api<IssuedWebhookEndpoint>('POST', '/webhooks', { url: url.trim(), events, ...(description.trim() !== '' ? { description: description.trim() } : {}) });
      setUrl('');
      setDescription('');
      setEvents(defaultEvents());
      await onCreated(created);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const errors = endpointErrors(error);
  return (
    <section aria-labelledby="create-endpoint-title">
      <h2 id="create-endpoint-title">Add an endpoint</h2>
      {errors.general !== undefined && <ErrorAlert>{errors.general}</ErrorAlert>}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <div class="inline-form">
          <Field id="webhook-url" label="URL" hint="https, on your application, e.g. https://app.example.com/hooks/latchkey." error={errors.url}>
            {(aria) => <input {...aria} name="url" type="url" maxLength={2048} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />}
          </Field>
          <Field id="webhook-description" label="Description (optional)" error={errors.description}>
            {(aria) => <input {...aria} name="description" maxLength={500} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
          </Field>
        </div>
        <CheckboxGroup id="webhook-events" legend="Events" options={eventOptions} selected={events} onChange={setEvents} error={errors.events} />
        <button type="submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add endpoint'}
        </button>
      </form>
    </section>
  );
}

function EditEndpointForm({ endpoint, onClose, onSaved }: { endpoint: WebhookEndpoint; onClose: () => void; onSaved: (saved: WebhookEndpoint) => Promise<void> }) {
  const [url, setUrl] = useState(endpoint.url);
  const [events, setEvents] = useState<string[]>(endpoint.events);
  const [description, setDescription] = useState(endpoint.description ?? '');
  const [enabled, setEnabled] = useState(endpoint.enabled);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const saved = await api<WebhookEndpoint>('PATCH', `/webhooks/${endpoint.id}`, { url: url.trim(), events, description: description.trim() === '' ? null : description.trim(), enabled });
      await onSaved(saved);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const errors = endpointErrors(error);
  return (
    <form onSubmit={submit} noValidate aria-busy={busy}>
      {errors.general !== undefined && <ErrorAlert>{errors.general}</ErrorAlert>}
      <Field id="edit-webhook-url" label="URL" error={errors.url}>
        {(aria) => <input {...aria} type="url" maxLength={2048} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />}
      </Field>
      <Field id="edit-webhook-description" label="Description" error={errors.description}>
        {(aria) => <input {...aria} maxLength={500} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
      </Field>
      <CheckboxGroup id="edit-webhook-events" legend="Events" options={eventOptions} selected={events} onChange={setEvents} error={errors.events} />
      <label class="choice">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Enabled (a disabled endpoint is sent nothing)
      </label>
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save endpoint'}
        </button>
      </div>
    </form>
  );
}


const DELIVERY_FILTERS: Array<{ value: '' | DeliveryStatus; label: string }> = [
  { value: '', label: 'Every status' },
  { value: 'pending', label: 'Pending (being retried)' },
  { value: 'succeeded', label: 'Succeeded' },
  { value: 'failed', label: 'Failed (gave up)' },
];

/** The last attempt of a delivery, in words. */
function lastOutcome(d: WebhookDelivery): string {
  if (d.lastAttemptAt === null) return 'not tried yet';
  const code = d.lastStatusCode !== null ? `HTTP ${d.lastStatusCode}` : (d.lastError ?? 'no answer');
  return d.lastError !== null && d.lastStatusCode !== null ? `${code} (${d.lastError})` : code;
}

function Deliveries({ endpoint, canWrite }: { endpoint: WebhookEndpoint; canWrite: boolean }) {
  const [status, setStatus] = useState<'' | DeliveryStatus>('');
  const deliveries = useLoad(() => api<{ items: WebhookDelivery[] }>('GET', `/webhooks/${endpoint.id}/deliveries${query({ status, limit: 50 })}`), [endpoint.id, status]);
  const [busy, setBusy] = useState<string | undefined>();
  const [message, setMessage] = useState('');
  const [rowError, setRowError] = useState<{ id: string; message: string } | undefined>();
  const redeliver = async (d: WebhookDelivery) => {
    setBusy(d.id);
    setRowError(undefined);
    try {
      await api<WebhookDelivery>('POST', `/webhooks/${endpoint.id}/deliveries/${d.id}/_redeliver`);
      await deliveries.reload();
      setMessage(`The ${d.eventType} delivery is queued again.`);
    } catch (err) {
      setRowError({ id: d.id, message: asApiError(err).message });
    } finally {
      setBusy(undefined);
    }
  };
  const items = deliveries.data?.items ?? [];
  return (
    <section aria-labelledby="deliveries-title" aria-busy={deliveries.loading}>
      <h2 id="deliveries-title">
        Recent deliveries to <code>{endpoint.url}</code>
      </h2>
      <div class="inline-form">
        <Field id="delivery-status" label="Status">
          {(aria) => (
            <select {...aria} value={status} onChange={(e) => setStatus(e.currentTarget.value as '' | DeliveryStatus)}>
              {DELIVERY_FILTERS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="button" class="secondary" onClick={() => void deliveries.reload()} disabled={deliveries.loading}>
          {deliveries.loading ? 'Loading…' : 'Reload deliveries'}
        </button>
      </div>
      <StatusLine message={message} />
      {deliveries.error !== undefined && <ErrorAlert>{deliveries.error.message}</ErrorAlert>}
      {deliveries.data !== undefined && items.length === 0 && (
        <EmptyState title={status === '' ? 'No deliveries yet' : 'No delivery with this status'}>
          <p>Deliveries appear when a connection event this endpoint asks for happens: connect an account on the Connectors page, for instance.</p>
        </EmptyState>
      )}
      {items.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last answer</th>
                <th scope="col">Next attempt</th>
                <th scope="col">Created</th>
                {canWrite && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <th scope="row">
                    <code>{d.eventType}</code>
                    <div class="hint">
                      <code>{d.messageId}</code>
                    </div>
                  </th>
                  <td>
                    <span class={`badge ${d.status}`} data-status>
                      {d.status}
                    </span>
                  </td>
                  <td>{d.attempts}</td>
                  <td>
                    {lastOutcome(d)}
                    {d.attemptLog[d.attemptLog.length - 1]?.responseSnippet && <div class="hint">{d.attemptLog[d.attemptLog.length - 1]?.responseSnippet}</div>}
                  </td>
                  <td>{when(d.nextAttemptAt, '—')}</td>
                  <td>{when(d.createdAt)}</td>
                  {canWrite && (
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Redeliver ${d.eventType} ${d.messageId}`} disabled={busy === d.id} onClick={() => void redeliver(d)}>
                        {busy === d.id ? 'Queuing…' : 'Redeliver'}
                      </button>
                      {rowError?.id === d.id && <div class="field-error" role="alert">{rowError.message}</div>}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
