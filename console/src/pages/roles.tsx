import { useState } from 'preact/hooks';
import { api, type ApiError, asApiError } from '../api';
import { ErrorAlert, NeedsPermission, StatusLine } from '../components/alert';
import { CheckboxGroup } from '../components/checkbox-group';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { loadDirectory, type Directory } from '../directory';
import { PERMISSIONS, type Me, type Role } from '../types';
import { useLoad } from '../use-load';
import { Confirm } from '../components/confirm';

const permissionOptions = PERMISSIONS.map((p) => ({ value: p, label: <code>{p}</code> }));

/** Who holds a role, in words. */
function holders(directory: Directory, role: string): string {
  const names = directory.bindings
    .filter((b) => b.roleName === role)
    .map((b) =>
      b.principal.type === 'user'
        ? (directory.users.find((u) => u.id === b.principal.id)?.username ?? b.principal.id)
        : `group ${directory.groups.find((g) => g.id === b.principal.id)?.name ?? b.principal.id}`,
    );
  return names.join(', ') || 'nobody';
}

/** The first field error under `prefix` ("permissions.2" for "permissions"). */
function fieldUnder(error: ApiError | undefined, prefix: string): string | undefined {
  return error?.fields.find((f) => f.path === prefix || f.path.startsWith(`${prefix}.`))?.message;
}

/** Roles: the built-in ones, custom ones (create, edit, delete), and who holds each. */
export function RolesPage({ me }: { me: Me }) {
  const admin = me.permissions.includes('identity:admin');
  const directory = useLoad(() => (admin ? loadDirectory() : Promise.resolve(undefined)), [admin]);
  const [status, setStatus] = useState('');
  const [editing, setEditing] = useState<Role | undefined>();
  const [deleting, setDeleting] = useState<Role | undefined>();

  if (!admin) {
    return (
      <>
        <h1>Roles</h1>
        <NeedsPermission permission="identity:admin" what="manage roles" />
      </>
    );
  }
  const d = directory.data;

  return (
    <>
      <h1>Roles</h1>
      <p class="lead">
        A role is a set of permissions, granted to users and groups. The built-in roles <code>admin</code>, <code>editor</code> and <code>viewer</code> cannot be changed.
        Nobody grants what they do not hold: a role or grant that needs a permission you lack is refused.
      </p>
      <CreateRoleForm
        onCreated={async (role) => {
          await directory.reload();
          setStatus(`Role “${role.name}” created.`);
        }}
      />
      <StatusLine message={status} />
      <section aria-labelledby="roles-title">
        <h2 id="roles-title">Roles</h2>
        {directory.error !== undefined && <ErrorAlert>{directory.error.message}</ErrorAlert>}
        {d === undefined && directory.error === undefined && <p class="loading">Loading roles…</p>}
        {d !== undefined && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Permissions</th>
                  <th scope="col">Granted to</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.roles.map((role) => (
                  <tr key={role.name}>
                    <th scope="row">
                      {role.name} {role.builtin && <span class="badge builtin">built-in</span>}
                      {role.description !== null && <div class="hint">{role.description}</div>}
                    </th>
                    <td>
                      <ul class="inline">
                        {role.permissions.map((p) => (
                          <li key={p}>
                            <code>{p}</code>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>{holders(d, role.name)}</td>
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Edit ${role.name}`} onClick={() => setEditing(role)}>
                        {role.builtin ? 'Grants' : 'Edit'}
                      </button>
                      {!role.builtin && (
                        <button type="button" class="danger" aria-label={`Delete ${role.name}`} onClick={() => setDeleting(role)}>
                          Delete
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {d !== undefined && d.roles.every((r) => r.builtin) && <p class="hint">No custom roles yet: create one above when the built-in roles grant too much or too little.</p>}
      </section>
      {d !== undefined && (
        <Dialog title="Edit role" open={editing !== undefined} onClose={() => setEditing(undefined)}>
          {editing !== undefined && (
            <EditRoleForm
              key={editing.name}
              directory={d}
              role={editing}
              onClose={() => setEditing(undefined)}
              onSaved={async () => {
                setEditing(undefined);
                await directory.reload();
                setStatus(`Role “${editing.name}” saved.`);
              }}
            />
          )}
        </Dialog>
      )}
      <Dialog title="Delete role" open={deleting !== undefined} onClose={() => setDeleting(undefined)}>
        {deleting !== undefined && (
          <DeleteRole
            role={deleting}
            onClose={() => setDeleting(undefined)}
            onDeleted={async () => {
              setDeleting(undefined);
              await directory.reload();
              setStatus(`Role “${deleting.name}” deleted.`);
            }}
          />
        )}
      </Dialog>
    </>
  );
}

function CreateRoleForm({ onCreated }: { onCreated: (role: Role) => Promise<void> }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [permissions, setPermissions] = useState<string[]>([]);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const role = await api<Role>('POST', '/roles', { name: name.trim(), ...(description.trim() !== '' ? { description: description.trim() } : {}), permissions });
      setName('');
      setDescription('');
      setPermissions([]);
      await onCreated(role);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const nameError = fieldMessage('Name', error?.field('name')) ?? (error?.code === 'conflict' ? error.message : undefined);
  const descriptionError = fieldMessage('Description', error?.field('description'));
  // Granting more than one holds is about the permissions chosen.
  const permissionsError = fieldMessage('Permissions', fieldUnder(error, 'permissions')) ?? (error?.code === 'insufficient_permissions' ? error.message : undefined);
  return (
    <section aria-labelledby="create-role-title">
      <h2 id="create-role-title">Create a role</h2>
      {error !== undefined && nameError === undefined && descriptionError === undefined && permissionsError === undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <div class="inline-form">
          <Field id="role-name" label="Name" hint="Letters, digits and ._:- characters." error={nameError}>
            {(aria) => <input {...aria} name="name" maxLength={63} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
          </Field>
          <Field id="role-description" label="Description (optional)" error={descriptionError}>
            {(aria) => <input {...aria} name="description" maxLength={1000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
          </Field>
        </div>
        <CheckboxGroup id="role-permissions" legend="Permissions" options={permissionOptions} selected={permissions} onChange={setPermissions} error={permissionsError} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create role'}
        </button>
      </form>
    </section>
  );
}

function EditRoleForm({ directory, role, onClose, onSaved }: { directory: Directory; role: Role; onClose: () => void; onSaved: () => Promise<void> }) {
  const held = (type: 'user' | 'group') => directory.bindings.filter((b) => b.roleName === role.name && b.principal.type === type).map((b) => b.principal.id);
  const [description, setDescription] = useState(role.description ?? '');
  const [permissions, setPermissions] = useState<string[]>(role.permissions);
  const [users, setUsers] = useState(() => held('user'));
  const [groups, setGroups] = useState(() => held('group'));
  const [error, setError] = useState<{ at: 'role' | 'grants'; error: ApiError } | undefined>();
  const [busy, setBusy] = useState(false);
  const path = `/roles/${encodeURIComponent(role.name)}`;

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    let at: 'role' | 'grants' = 'role';
    try {
      const text = description.trim() === '' ? null : description.trim();
      const changed = text !== role.description || permissions.length !== role.permissions.length || permissions.some((p) => !(role.permissions as readonly string[]).includes(p));
      if (!role.builtin && changed) await api<Role>('PATCH', path, { description: text, permissions });
      at = 'grants';
      for (const [type, wanted, current] of [
        ['user', users, held('user')],
        ['group', groups, held('group')],
      ] as const) {
        for (const id of wanted.filter((x) => !current.includes(x))) await api('POST', `${path}/bindings`, { principal: { type, id } });
        for (const id of current.filter((x) => !wanted.includes(x))) await api('DELETE', `${path}/bindings/${type}/${id}`);
      }
      await onSaved();
    } catch (err) {
      setError({ at, error: asApiError(err) });
    } finally {
      setBusy(false);
    }
  };
  const roleError = error?.at === 'role' ? error.error : undefined;
  const descriptionError = fieldMessage('Description', roleError?.field('description'));
  const permissionsError = roleError !== undefined && descriptionError === undefined ? (fieldMessage('Permissions', fieldUnder(roleError, 'permissions')) ?? roleError.message) : undefined;
  return (
    <form onSubmit={submit} noValidate aria-busy={busy}>
      <p>
        <strong>{role.name}</strong>
        {role.builtin && ' is built in: its permissions cannot change, but you can choose who holds it.'}
      </p>
      {!role.builtin && (
        <>
          <Field id="edit-role-description" label="Description" error={descriptionError}>
            {(aria) => <input {...aria} maxLength={1000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
          </Field>
          <CheckboxGroup id="edit-role-permissions" legend="Permissions" options={permissionOptions} selected={permissions} onChange={setPermissions} error={permissionsError} />
        </>
      )}
      <CheckboxGroup
        id="edit-role-users"
        legend="Granted to users"
        options={directory.users.map((u) => ({ value: u.id, label: u.username }))}
        selected={users}
        onChange={setUsers}
        error={error?.at === 'grants' ? error.error.message : undefined}
      />
      <CheckboxGroup
        id="edit-role-groups"
        legend="Granted to groups"
        options={directory.groups.map((g) => ({ value: g.id, label: g.name }))}
        selected={groups}
        onChange={setGroups}
        empty="This tenant has no groups yet."
      />
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save role'}
        </button>
      </div>
    </form>
  );
}

function DeleteRole({ role, onClose, onDeleted }: { role: Role; onClose: () => void; onDeleted: () => Promise<void> }) {
  const remove = async () => {
    await api('DELETE', `/roles/${encodeURIComponent(role.name)}`);
    await onDeleted();
  };
  return (
    <Confirm action="Delete role" busyLabel="Deleting…" run={remove} onClose={onClose}>
      Delete the role <strong>{role.name}</strong>? Everyone who holds it loses its permissions from their next request on.
    </Confirm>
  );
}
