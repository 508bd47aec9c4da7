import { api } from './api';
import type { Group, Role, RoleBinding, User } from './types';

/** The tenant's users, groups and roles with who holds what: what the identity pages show. */
export interface Directory {
  users: User[];
  groups: Group[];
  roles: Role[];
  /** Group id → member user ids. */
  members: Map<string, string[]>;
  bindings: RoleBinding[];
}

/** Loads the directory (needs identity:admin): users, groups and their members, roles and their grants. */
export async function loadDirectory(): Promise<Directory> {
  const [users, groups, roles] = await Promise.all([
    api<{ items: User[] }>('GET', '/users'),
    api<{ items: Group[] }>('GET', '/groups'),
    api<{ items: Role[] }>('GET', '/roles'),
  ]);
  const [memberLists, bindingLists] = await Promise.all([
    Promise.all(groups.items.map((g) => api<{ items: User[] }>('GET', `/groups/${g.id}/members`))),
    Promise.all(roles.items.map((r) => api<{ items: RoleBinding[] }>('GET', `/roles/${encodeURIComponent(r.name)}/bindings`))),
  ]);
  const members = new Map(groups.items.map((g, i) => [g.id, (memberLists[i]?.items ?? []).map((u) => u.id)]));
  return { users: users.items, groups: groups.items, roles: roles.items, members, bindings: bindingLists.flatMap((b) => b.items) };
}

/** The roles granted directly to a user or group. */
export function rolesOf(directory: Directory, type: 'user' | 'group', id: string): string[] {
  return directory.bindings.filter((b) => b.principal.type === type && b.principal.id === id).map((b) => b.roleName);
}

/** The groups a user is a member of. */
export function groupsOf(directory: Directory, userId: string): Group[] {
  return directory.groups.filter((g) => directory.members.get(g.id)?.includes(userId));
}

/**
 * Makes the role grants of a user or group be `wanted`: grants the missing ones, then revokes the
 * extra ones (so an admin moving from one admin role to another never passes through none).
 */
export async function syncRoles(directory: Directory, principal: { type: 'user' | 'group'; id: string }, wanted: string[]): Promise<void> {
  const current = rolesOf(directory, principal.type, principal.id);
  for (const role of wanted.filter((r) => !current.includes(r))) await api('POST', `/roles/${encodeURIComponent(role)}/bindings`, { principal });
  for (const role of current.filter((r) => !wanted.includes(r))) await api('DELETE', `/roles/${encodeURIComponent(role)}/bindings/${principal.type}/${principal.id}`);
}

/** Makes a user's group memberships be `wanted` (group ids). */
export async function syncGroups(directory: Directory, userId: string, wanted: string[]): Promise<void> {
  const current = groupsOf(directory, userId).map((g) => g.id);
  for (const id of wanted.filter((g) => !current.includes(g))) await api('POST', `/groups/${id}/members`, { userId });
  for (const id of current.filter((g) => !wanted.includes(g))) await api('DELETE', `/groups/${id}/members/${userId}`);
}

/** Makes a group's members be `wanted` (user ids). */
export async function syncMembers(directory: Directory, groupId: string, wanted: string[]): Promise<void> {
  const current = directory.members.get(groupId) ?? [];
  for (const userId of wanted.filter((u) => !current.includes(u))) await api('POST', `/groups/${groupId}/members`, { userId });
  for (const userId of current.filter((u) => !wanted.includes(u))) await api('DELETE', `/groups/${groupId}/members/${userId}`);
}
