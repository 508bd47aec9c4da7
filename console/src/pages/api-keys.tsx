import { useRef, useState } from 'preact/hooks';
import { api, ApiError, listAll } from '../api';
import { EmptyState, ErrorAlert, StatusLine } from '../components/alert';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { IssuedKey } from '../components/issued-key';
import { keyState, limits, when } from '../format';
import type { ApiKey, IssuedApiKey, Me } from '../types';
import { useLoad } from '../use-load';

const EXPIRIES = [
  { value: '', label: 'Never' },
  { value: '30d', label: 'In 30 days' },
  { value: '90d', label: 'In 90 days' },
  { value: '365d', label: 'In a year' },
];

const GRACE_PERIODS = [
  { value: '', label: 'None: the old key stops working now' },
  { value: '1h', label: '1 hour' },
  { value: '1d', label: '1 day' },
  { value: '7d', label: '7 days' },
];

type Issued = { title: string; key: string; note?: string };

/** API keys: create (shown once), list masked, roll, revoke. */
export function ApiKeysPage({ me }: { me: Me }) {
  const keys = useLoad(() => listAll<ApiKey>('/api-keys'));
  const [issued, setIssued] = useState<Issued | undefined>();
  const [status, setStatus] = useState('');
  const [rolling, setRolling] = useState<ApiKey | undefined>();
  const [revoking, setRevoking] = useState<ApiKey | undefined>();
  const canWrite = me.permissions.includes('apikeys:write');
  // Where focus goes when what had it goes away (the new key's panel, a revoked key's buttons).
  const listHeading = useRef<HTMLHeadingElement>(null);
  const focusList = () => listHeading.current?.focus();

  const afterIssue = async (next: Issued) => {
    setIssued(next);
    await keys.reload();
  };

  return (
    <>
      <h1>API keys</h1>
      <p class="lead">A key lets a program call the Latchkey API with your permissions (or fewer). Send it as <code>Authorization: ApiKey &lt;key&gt;</code>.</p>
      {issued !== undefined && <IssuedKey title={issued.title} apiKey={issued.key} {...(issued.note !== undefined ? { note: issued.note } : {})} onDone={() => {
            setIssued(undefined);
            focusList();
          }} />}
      {canWrite && (
        <CreateKeyForm
          onCreated={(created) => {
            setStatus(`Key “${created.apiKey.name}” created.`);
            void afterIssue({ title: `Your new API key “${created.apiKey.name}”`, key: created.key });
          }}
        />
      )}
      <StatusLine message={status} />
      <section aria-labelledby="keys-title">
        <h2 id="keys-title" ref={listHeading} tabIndex={-1}>
          Keys
        </h2>
        {keys.error !== undefined && <ErrorAlert>{keys.error.message}</ErrorAlert>}
        {keys.data === undefined && keys.error === undefined && <p class="loading">Loading keys…</p>}
        {keys.data !== undefined && keys.data.length === 0 && (
          <EmptyState title="No API keys yet">
            <p>{canWrite ? 'Create one above: name it after the program or place that will use it, so you know what breaks when you revoke it.' : 'You may not create keys: ask an administrator for the apikeys:write permission.'}</p>
          </EmptyState>
        )}
        {keys.data !== undefined && keys.data.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Limits</th>
                  {canWrite && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {keys.data.map((key) => {
                  const state = keyState(key);
                  return (
                    <tr key={key.id}>
                      <th scope="row">
                        {key.name}
                        {key.ownerId !== me.user.id && <div class="hint">owner {key.ownerId}</div>}
                      </th>
                      <td>
                        <code>{key.masked}</code>
                      </td>
                      <td>
                        <span class={`badge ${state}`}>{state}</span>
                      </td>
                      <td>{when(key.createdAt)}</td>
                      <td>{when(key.expiresAt)}</td>
                      <td>{when(key.lastUsedAt)}</td>
                      <td>{limits(key)}</td>
                      {canWrite && (
                        <td class="actions">
                          {state !== 'revoked' && (
                            <>
                              <button type="button" class="secondary" aria-label={`Roll ${key.name}`} onClick={() => setRolling(key)}>
                                Roll
                              </button>
                              <button type="button" class="danger" aria-label={`Revoke ${key.name}`} onClick={() => setRevoking(key)}>
                                Revoke
                              </button>
                            </>
                          )}
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <RollDialog
        apiKey={rolling}
        onClose={() => setRolling(undefined)}
        onRolled={(rolled, grace) => {
          setRolling(undefined);
          setStatus(`Key “${rolled.apiKey.name}” rolled.`);
          const note = grace === '' ? 'The old key no longer works.' : `The old key keeps working for ${GRACE_PERIODS.find((g) => g.value === grace)?.label ?? grace}.`;
          void afterIssue({ title: `The new secret of “${rolled.apiKey.name}”`, key: rolled.key, note });
        }}
      />
      <RevokeDialog
        apiKey={revoking}
        onClose={() => setRevoking(undefined)}
        onRevoked={(revoked) => {
          setRevoking(undefined);
          setStatus(`Key “${revoked.name}” is revoked.`);
          void keys.reload().then(focusList);
        }}
      />
    </>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (created: IssuedApiKey) => void }) {
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    if (name.trim() === '') {
      setError(new ApiError('validation_failed', 'The key needs a name.', 400, [{ path: 'name', message: 'must not be empty' }]));
      return;
    }
    setBusy(true);
    try {
      const created = await api<IssuedApiKey>('POST', '/api-keys', { name: name.trim(), ...(expiresIn !== '' ? { expiresIn } : {}) });
      setName('');
      setExpiresIn('');
      onCreated(created);
    } catch (err) {
      setError(err instanceof ApiError ? err : undefined);
    } finally {
      setBusy(false);
    }
  };

  const nameError = fieldMessage('Name', error?.field('name'));
  const expiryError = fieldMessage('Expiry', error?.field('expiresIn'));
  return (
    <section aria-labelledby="create-key-title">
      <h2 id="create-key-title">Create a key</h2>
      {error !== undefined && nameError === undefined && expiryError === undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      <form class="inline-form" onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="key-name" label="Name" hint="Where the key will be used, e.g. “billing-worker”." error={nameError}>
          {(aria) => <input {...aria} name="name" maxLength={200} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="key-expiry" label="Expires" error={expiryError}>
          {(aria) => (
            <select {...aria} name="expiresIn" value={expiresIn} onChange={(e) => setExpiresIn(e.currentTarget.value)}>
              {EXPIRIES.map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </form>
    </section>
  );
}

function RollDialog({ apiKey, onClose, onRolled }: { apiKey: ApiKey | undefined; onClose: () => void; onRolled: (rolled: IssuedApiKey, grace: string) => void }) {
  const [grace, setGrace] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!apiKey) return;
    setBusy(true);
    setError(undefined);
    try {
      const rolled = await api<IssuedApiKey>('POST', `/api-keys/${apiKey.id}/_roll`, grace === '' ? {} : { gracePeriod: grace });
      setGrace('');
      onRolled(rolled, grace);
    } catch (err) {
      setError(err instanceof ApiError ? err : undefined);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="Roll key" open={apiKey !== undefined} onClose={onClose}>
      <form onSubmit={submit} aria-busy={busy}>
        <p>
          Rolling gives <strong>{apiKey?.name}</strong> a new secret; its id, permissions and limits stay. Programs must switch to the new key.
        </p>
        {error !== undefined && error.field('gracePeriod') === undefined && <ErrorAlert>{error.message}</ErrorAlert>}
        <Field id="roll-grace" label="Grace period for the old key" error={fieldMessage('Grace period', error?.field('gracePeriod'))}>
          {(aria) => (
            <select {...aria} value={grace} onChange={(e) => setGrace(e.currentTarget.value)}>
              {GRACE_PERIODS.map((g) => (
                <option key={g.value} value={g.value}>
                  {g.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <div class="buttons">
          <button type="button" class="secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            {busy ? 'Rolling…' : 'Roll key'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function RevokeDialog({ apiKey, onClose, onRevoked }: { apiKey: ApiKey | undefined; onClose: () => void; onRevoked: (revoked: ApiKey) => void }) {
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const revoke = async () => {
    if (!apiKey) return;
    setBusy(true);
    setError(undefined);
    try {
      onRevoked(await api<ApiKey>('DELETE', `/api-keys/${apiKey.id}`));
    } catch (err) {
      setError(err instanceof ApiError ? err : undefined);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="Revoke key" open={apiKey !== undefined} onClose={onClose}>
      <p>
        Revoke <strong>{apiKey?.name}</strong> (<code>{apiKey?.masked}</code>)? Every program using it is refused from now on. This cannot be undone.
      </p>
      {error !== undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={revoke} disabled={busy}>
          {busy ? 'Revoking…' : 'Revoke key'}
        </button>
      </div>
    </Dialog>
  );
}
