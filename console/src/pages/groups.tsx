import { useRef, useState } from 'preact/hooks';
import { api, type ApiError, asApiError } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission, StatusLine } from '../components/alert';
import { CheckboxGroup } from '../components/checkbox-group';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { loadDirectory, rolesOf, syncMembers, syncRoles, type Directory } from '../directory';
import { when } from '../format';
import type { Group, Me } from '../types';
import { useLoad } from '../use-load';
import { Confirm } from '../components/confirm';

/** Groups: create, rename, members and roles, delete. */
export function GroupsPage({ me }: { me: Me }) {
  const admin = me.permissions.includes('identity:admin');
  const directory = useLoad(() => (admin ? loadDirectory() : Promise.resolve(undefined)), [admin]);
  const [status, setStatus] = useState('');
  const [editing, setEditing] = useState<Group | undefined>();
  const [deleting, setDeleting] = useState<Group | undefined>();
  const listHeading = useRef<HTMLHeadingElement>(null);

  if (!admin) {
    return (
      <>
        <h1>Groups</h1>
        <NeedsPermission permission="identity:admin" what="manage groups" />
      </>
    );
  }
  const d = directory.data;
  const username = (id: string) => d?.users.find((u) => u.id === id)?.username ?? id;

  return (
    <>
      <h1>Groups</h1>
      <p class="lead">A role granted to a group counts for each of its members, from their next request on.</p>
      <CreateGroupForm
        onCreated={async (group) => {
          await directory.reload();
          setStatus(`Group “${group.name}” created.`);
        }}
      />
      <StatusLine message={status} />
      <section aria-labelledby="groups-title">
        <h2 id="groups-title" ref={listHeading} tabIndex={-1}>
          Groups
        </h2>
        {directory.error !== undefined && <ErrorAlert>{directory.error.message}</ErrorAlert>}
        {d === undefined && directory.error === undefined && <p class="loading">Loading groups…</p>}
        {d !== undefined && d.groups.length === 0 && (
          <EmptyState title="No groups yet">
            <p>Create one above (“support”, “billing-team”), add its members and grant it roles, instead of granting roles user by user.</p>
          </EmptyState>
        )}
        {d !== undefined && d.groups.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Members</th>
                  <th scope="col">Roles</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.groups.map((group) => (
                  <tr key={group.id}>
                    <th scope="row">{group.name}</th>
                    <td>{(d.members.get(group.id) ?? []).map(username).join(', ') || '—'}</td>
                    <td>{rolesOf(d, 'group', group.id).join(', ') || '—'}</td>
                    <td>{when(group.createdAt)}</td>
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Edit ${group.name}`} onClick={() => setEditing(group)}>
                        Edit
                      </button>
                      <button type="button" class="danger" aria-label={`Delete ${group.name}`} onClick={() => setDeleting(group)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {d !== undefined && (
        <Dialog title="Edit group" open={editing !== undefined} onClose={() => setEditing(undefined)}>
          {editing !== undefined && (
            <EditGroupForm
              key={editing.id}
              directory={d}
              group={editing}
              onClose={() => setEditing(undefined)}
              onSaved={async (group) => {
                setEditing(undefined);
                await directory.reload();
                setStatus(`Group “${group.name}” saved.`);
              }}
            />
          )}
        </Dialog>
      )}
      <DeleteGroupDialog
        group={deleting}
        onClose={() => setDeleting(undefined)}
        onDeleted={async (group) => {
          setDeleting(undefined);
          await directory.reload();
          setStatus(`Group “${group.name}” deleted.`);
          listHeading.current?.focus();
        }}
      />
    </>
  );
}

function CreateGroupForm({ onCreated }: { onCreated: (group: Group) => Promise<void> }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const group = await api<Group>('POST', '/groups', { name: name.trim() });
      setName('');
      await onCreated(group);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  // A taken name (409) belongs next to the name too.
  const nameError = fieldMessage('Name', error?.field('name')) ?? (error?.code === 'conflict' ? error.message : undefined);
  return (
    <section aria-labelledby="create-group-title">
      <h2 id="create-group-title">Create a group</h2>
      {error !== undefined && nameError === undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      <form class="inline-form" onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="group-name" label="Name" hint="Letters, digits and ._:- characters." error={nameError}>
          {(aria) => <input {...aria} name="name" maxLength={63} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create group'}
        </button>
      </form>
    </section>
  );
}

function EditGroupForm({ directory, group, onClose, onSaved }: { directory: Directory; group: Group; onClose: () => void; onSaved: (group: Group) => Promise<void> }) {
  const [name, setName] = useState(group.name);
  const [members, setMembers] = useState(() => directory.members.get(group.id) ?? []);
  const [roles, setRoles] = useState(() => rolesOf(directory, 'group', group.id));
  const [error, setError] = useState<{ at: 'name' | 'members' | 'roles'; error: ApiError } | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    let at: 'name' | 'members' | 'roles' = 'name';
    try {
      const saved = name.trim() === group.name ? group : await api<Group>('PATCH', `/groups/${group.id}`, { name: name.trim() });
      at = 'members';
      await syncMembers(directory, group.id, members);
      at = 'roles';
      await syncRoles(directory, { type: 'group', id: group.id }, roles);
      await onSaved(saved);
    } catch (err) {
      setError({ at, error: asApiError(err) });
    } finally {
      setBusy(false);
    }
  };
  const nameError = error?.at === 'name' ? (fieldMessage('Name', error.error.field('name')) ?? error.error.message) : undefined;
  return (
    <form onSubmit={submit} noValidate aria-busy={busy}>
      <Field id="edit-group-name" label="Name" error={nameError}>
        {(aria) => <input {...aria} maxLength={63} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <CheckboxGroup
        id="edit-group-members"
        legend="Members"
        options={directory.users.map((u) => ({ value: u.id, label: u.username }))}
        selected={members}
        onChange={setMembers}
        error={error?.at === 'members' ? error.error.message : undefined}
      />
      <CheckboxGroup
        id="edit-group-roles"
        legend="Roles"
        options={directory.roles.map((r) => ({ value: r.name, label: r.name }))}
        selected={roles}
        onChange={setRoles}
        error={error?.at === 'roles' ? error.error.message : undefined}
      />
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save group'}
        </button>
      </div>
    </form>
  );
}

function DeleteGroupDialog({ group, onClose, onDeleted }: { group: Group | undefined; onClose: () => void; onDeleted: (group: Group) => Promise<void> }) {
  const remove = async () => {
    if (!group) return;
    await api('DELETE', `/groups/${group.id}`);
    await onDeleted(group);
  };
  return (
    <Dialog title="Delete group" open={group !== undefined} onClose={onClose}>
      <Confirm action="Delete group" busyLabel="Deleting…" run={remove} onClose={onClose}>
        Delete <strong>{group?.name}</strong>? Its members lose the roles it grants them. The users themselves stay.
      </Confirm>
    </Dialog>
  );
}
