/** Every permission Latchkey knows, as `resource:action`. */
export const PERMISSIONS = [
  'apikeys:read',
  'apikeys:write',
  'apikeys:verify',
  'connectors:read',
  'connectors:write',
  'connectors:use',
  'connectors:token',
  'tasks:read',
  'tasks:write',
  'webhooks:read',
  'webhooks:write',
  'identity:admin',
  'audit:read',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export type BuiltinRoleName = 'admin' | 'editor' | 'viewer';

/**
 * The roles every tenant has. They are defined here, not in the database, and cannot be changed.
 *
 * @example
 * BUILTIN_ROLES.viewer; // ['apikeys:read', 'connectors:read', 'tasks:read']
 */
export const BUILTIN_ROLES: Readonly<Record<BuiltinRoleName, readonly Permission[]>> = Object.freeze({
  admin: Object.freeze([...PERMISSIONS]),
  editor: Object.freeze([
    'apikeys:read',
    'apikeys:write',
    'connectors:read',
    'connectors:write',
    'connectors:use',
    'connectors:token',
    'tasks:read',
    'tasks:write',
    'webhooks:read',
    'webhooks:write',
  ] as const),
  viewer: Object.freeze(['apikeys:read', 'connectors:read', 'tasks:read'] as const),
});

/** The role whose last active holder a tenant must keep. */
export const ADMIN_ROLE: BuiltinRoleName = 'admin';

const KNOWN = new Set<string>(PERMISSIONS);

/**
 * @example
 * isPermission('tasks:read'); // true
 * isPermission('tasks:delete'); // false
 */
export function isPermission(value: unknown): value is Permission {
  return typeof value === 'string' && KNOWN.has(value);
}

/**
 * @example
 * isBuiltinRole('editor'); // true
 */
export function isBuiltinRole(name: string): name is BuiltinRoleName {
  return Object.prototype.hasOwnProperty.call(BUILTIN_ROLES, name);
}
