import { useRef, useState } from 'preact/hooks';
import { api, type ApiError, asApiError } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission, StatusLine } from '../components/alert';
import { CheckboxGroup } from '../components/checkbox-group';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { groupsOf, loadDirectory, rolesOf, syncGroups, syncRoles, type Directory } from '../directory';
import { when } from '../format';
import type { Me, User } from '../types';
import { useLoad } from '../use-load';
import { Confirm } from '../components/confirm';

/** Users of the tenant: create, edit (name, password, roles, groups), disable and enable. */
export function UsersPage({ me }: { me: Me }) {
  const admin = me.permissions.includes('identity:admin');
  const directory = useLoad(() => (admin ? loadDirectory() : Promise.resolve(undefined)), [admin]);
  const [status, setStatus] = useState('');
  const [editing, setEditing] = useState<User | undefined>();
  const [disabling, setDisabling] = useState<User | undefined>();
  const [rowError, setRowError] = useState<{ id: string; message: string } | undefined>();
  const listHeading = useRef<HTMLHeadingElement>(null);

  if (!admin) {
    return (
      <>
        <h1>Users</h1>
        <NeedsPermission permission="identity:admin" what="manage users" />
      </>
    );
  }
  const d = directory.data;

  const enable = async (user: User) => {
    setRowError(undefined);
    try {
      await api<User>('PATCH', `/users/${user.id}`, { disabled: false });
      await directory.reload();
      setStatus(`“${user.username}” is enabled.`);
    } catch (err) {
      setRowError({ id: user.id, message: asApiError(err).message });
    }
  };

  return (
    <>
      <h1>Users</h1>
      <p class="lead">The people and programs of this tenant. A user gets permissions from the roles granted to it and to its groups; API keys act as their owner.</p>
      {d !== undefined && (
        <CreateUserForm
          directory={d}
          onCreated={async (user) => {
            await directory.reload();
            setStatus(`User “${user.username}” created.`);
          }}
        />
      )}
      <StatusLine message={status} />
      <section aria-labelledby="users-title">
        <h2 id="users-title" ref={listHeading} tabIndex={-1}>
          Users
        </h2>
        {directory.error !== undefined && <ErrorAlert>{directory.error.message}</ErrorAlert>}
        {d === undefined && directory.error === undefined && <p class="loading">Loading users…</p>}
        {d !== undefined && d.users.length === 0 && (
          <EmptyState title="No users yet">
            <p>Create one above.</p>
          </EmptyState>
        )}
        {d !== undefined && d.users.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">User name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Roles</th>
                  <th scope="col">Groups</th>
                  <th scope="col">Password</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.users.map((user) => (
                  <tr key={user.id}>
                    <th scope="row">
                      {user.username}
                      {user.displayName !== null && <div class="hint">{user.displayName}</div>}
                      {user.id === me.user.id && <div class="hint">you</div>}
                    </th>
                    <td>
                      <span class={`badge ${user.disabled ? 'disabled' : 'enabled'}`}>{user.disabled ? 'disabled' : 'active'}</span>
                    </td>
                    <td>{rolesOf(d, 'user', user.id).join(', ') || '—'}</td>
                    <td>{groupsOf(d, user.id).map((g) => g.name).join(', ') || '—'}</td>
                    <td>{user.hasPassword ? 'set' : 'none (API keys only)'}</td>
                    <td>{when(user.createdAt)}</td>
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Edit ${user.username}`} onClick={() => setEditing(user)}>
                        Edit
                      </button>
                      {user.disabled ? (
                        <button type="button" class="secondary" aria-label={`Enable ${user.username}`} onClick={() => void enable(user)}>
                          Enable
                        </button>
                      ) : (
                        <button type="button" class="danger" aria-label={`Disable ${user.username}`} onClick={() => setDisabling(user)}>
                          Disable
                        </button>
                      )}
                      {rowError?.id === user.id && <div class="field-error" role="alert">{rowError.message}</div>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {d !== undefined && (
        <EditUserDialog
          directory={d}
          user={editing}
          onClose={() => setEditing(undefined)}
          onSaved={async (user) => {
            setEditing(undefined);
            await directory.reload();
            setStatus(`“${user.username}” saved.`);
          }}
        />
      )}
      <DisableDialog
        user={disabling}
        onClose={() => setDisabling(undefined)}
        onDisabled={async (user) => {
          setDisabling(undefined);
          await directory.reload();
          setStatus(`“${user.username}” is disabled.`);
          listHeading.current?.focus();
        }}
      />
    </>
  );
}

function roleOptions(directory: Directory) {
  return directory.roles.map((r) => ({ value: r.name, label: r.builtin ? `${r.name} (built-in)` : r.name }));
}

function CreateUserForm({ directory, onCreated }: { directory: Directory; onCreated: (user: User) => Promise<void> }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState<string[]>([]);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const user = await api<User>('POST', '/users', {
        username: username.trim(),
        ...(displayName.trim() !== '' ? { displayName: displayName.trim() } : {}),
        ...(password !== '' ? { password } : {}),
        roles,
      });
      setUsername('');
      setDisplayName('');
      setPassword('');
      setRoles([]);
      await onCreated(user);
    } catch (err) {
      // The password stays in its field (as the other fields do), so a corrected retry keeps it.
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const errors = {
    username: fieldMessage('User name', error?.field('username')),
    displayName: fieldMessage('Display name', error?.field('displayName')),
    password: fieldMessage('Password', error?.field('password')),
    roles: error?.fields.some((f) => f.path.startsWith('roles')) ? fieldMessage('Roles', error.fields.find((f) => f.path.startsWith('roles'))?.message) : undefined,
  };
  const general = error !== undefined && Object.values(errors).every((e) => e === undefined);
  return (
    <section aria-labelledby="create-user-title">
      <h2 id="create-user-title">Create a user</h2>
      {general && <ErrorAlert>{error?.message}</ErrorAlert>}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <div class="inline-form">
          <Field id="user-username" label="User name" hint="Letters, digits and ._@+- characters." error={errors.username}>
            {(aria) => <input {...aria} name="username" autoComplete="off" maxLength={128} value={username} onInput={(e) => setUsername(e.currentTarget.value)} />}
          </Field>
          <Field id="user-display-name" label="Display name (optional)" error={errors.displayName}>
            {(aria) => <input {...aria} name="displayName" maxLength={200} value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />}
          </Field>
          <Field id="user-password" label="Password (optional)" hint="Without one the user cannot log in to the console (API keys only)." error={errors.password}>
            {(aria) => <input {...aria} name="password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
          </Field>
        </div>
        <CheckboxGroup id="user-roles" legend="Roles" options={roleOptions(directory)} selected={roles} onChange={setRoles} error={errors.roles} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create user'}
        </button>
      </form>
    </section>
  );
}

function EditUserDialog({ directory, user, onClose, onSaved }: { directory: Directory; user: User | undefined; onClose: () => void; onSaved: (user: User) => Promise<void> }) {
  return (
    <Dialog title="Edit user" open={user !== undefined} onClose={onClose}>
      {user !== undefined && <EditUserForm key={user.id} directory={directory} user={user} onClose={onClose} onSaved={onSaved} />}
    </Dialog>
  );
}

function EditUserForm({ directory, user, onClose, onSaved }: { directory: Directory; user: User; onClose: () => void; onSaved: (user: User) => Promise<void> }) {
  const [displayName, setDisplayName] = useState(user.displayName ?? '');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState(() => rolesOf(directory, 'user', user.id));
  const [groups, setGroups] = useState(() => groupsOf(directory, user.id).map((g) => g.id));
  const [error, setError] = useState<{ at: 'details' | 'roles' | 'groups'; error: ApiError } | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    let at: 'details' | 'roles' | 'groups' = 'details';
    try {
      const name = displayName.trim() === '' ? null : displayName.trim();
      let saved = user;
      if (name !== user.displayName || password !== '') {
        saved = await api<User>('PATCH', `/users/${user.id}`, { ...(name !== user.displayName ? { displayName: name } : {}), ...(password !== '' ? { password } : {}) });
      }
      at = 'roles';
      await syncRoles(directory, { type: 'user', id: user.id }, roles);
      at = 'groups';
      await syncGroups(directory, user.id, groups);
      await onSaved(saved);
    } catch (err) {
      setError({ at, error: asApiError(err) });
    } finally {
      setBusy(false);
    }
  };

  const details = error?.at === 'details' ? error.error : undefined;
  const nameError = fieldMessage('Display name', details?.field('displayName'));
  const passwordError = fieldMessage('Password', details?.field('password'));
  return (
    <form onSubmit={submit} noValidate aria-busy={busy}>
      <p>
        <strong>{user.username}</strong> <code>{user.id}</code>
      </p>
      {details !== undefined && nameError === undefined && passwordError === undefined && <ErrorAlert>{details.message}</ErrorAlert>}
      <Field id="edit-user-display-name" label="Display name" error={nameError}>
        {(aria) => <input {...aria} maxLength={200} value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />}
      </Field>
      <Field id="edit-user-password" label="New password (optional)" hint="Setting one ends the user's console sessions." error={passwordError}>
        {(aria) => <input {...aria} type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
      </Field>
      <CheckboxGroup id="edit-user-roles" legend="Roles" options={roleOptions(directory)} selected={roles} onChange={setRoles} error={error?.at === 'roles' ? error.error.message : undefined} />
      <CheckboxGroup
        id="edit-user-groups"
        legend="Groups"
        options={directory.groups.map((g) => ({ value: g.id, label: g.name }))}
        selected={groups}
        onChange={setGroups}
        error={error?.at === 'groups' ? error.error.message : undefined}
        empty="This tenant has no groups yet; create them on the Groups page."
      />
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save user'}
        </button>
      </div>
    </form>
  );
}

function DisableDialog({ user, onClose, onDisabled }: { user: User | undefined; onClose: () => void; onDisabled: (user: User) => Promise<void> }) {
  const disable = async () => {
    if (!user) return;
    await onDisabled(await api<User>('PATCH', `/users/${user.id}`, { disabled: true }));
  };
  return (
    <Dialog title="Disable user" open={user !== undefined} onClose={onClose}>
      <Confirm action="Disable user" busyLabel="Disabling…" run={disable} onClose={onClose}>
        Disable <strong>{user?.username}</strong>? Their console sessions end and their API keys are refused at once. You can enable them again later.
      </Confirm>
    </Dialog>
  );
}
