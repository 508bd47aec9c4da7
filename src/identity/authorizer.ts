import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import type { Database, Invalidation, InvalidationBus } from '../db/index.js';
import type { Permission } from './permissions.js';
import { permissionsOfRoles, userRoleNames } from './role-queries.js';
import { TenantCache } from './tenant-cache.js';
import { assertId } from './validation.js';

export interface UserPermissions {
  /** False when the user is disabled or does not exist (then `permissions` is empty). */
  active: boolean;
  permissions: ReadonlySet<Permission>;
}

/**
 * Answers what a user may do, from their current roles (direct and through groups), on every
 * call. Answers are cached per process and dropped by every relevant invalidation on the bus.
 */
export interface Authorizer {
  /**
   * The user's CURRENT effective permissions: direct role bindings plus those of their groups.
   * active=false when the user is disabled or does not exist (then permissions is empty). Cached
   * per user; the cache is dropped on every relevant bus invalidation (scope 'user' for that user,
   * 'tenant' for its tenant) and entries expire after bus.boundMs; a value read across an
   * invalidation (bus.generation changed during the read) is returned but not cached.
   */
  userPermissions(tenantId: string, userId: string): Promise<UserPermissions>;
  /** Union of the permissions of the named roles (built-in or the tenant's custom roles); unknown names give nothing. Cached the same way (scope 'tenant'). */
  rolePermissions(tenantId: string, roleNames: readonly string[]): Promise<ReadonlySet<Permission>>;
  /** Role names the user holds, directly or through groups. */
  userRoles(tenantId: string, userId: string): Promise<ReadonlySet<string>>;
  /**
   * {@link userPermissions} when this process has the answer cached, without waiting for anything;
   * undefined when it would have to read the database. For the per-request hot path.
   */
  peekUserPermissions(tenantId: string, userId: string): UserPermissions | undefined;
  /** {@link rolePermissions} when cached, else undefined (the same way). */
  peekRolePermissions(tenantId: string, roleNames: readonly string[]): ReadonlySet<Permission> | undefined;
}

export interface AuthorizerOptions {
  db: Kysely<Database>;
  bus: InvalidationBus;
  clock: Clock;
  /** Most entries per cache (default 100,000). */
  maxEntries?: number;
}

interface UserEntry extends UserPermissions {
  roles: ReadonlySet<string>;
}

const NOBODY: UserEntry = Object.freeze({ active: false, roles: new Set<string>(), permissions: new Set<Permission>() });

/**
 * @example
 * const authorizer = createAuthorizer({ db, bus, clock: systemClock });
 * const { active, permissions } = await authorizer.userPermissions(tenantId, userId);
 * if (!active || !permissions.has('apikeys:write')) throw new LatchkeyError('insufficient_permissions', '...');
 */
export function createAuthorizer(options: AuthorizerOptions): Authorizer {
  const { db, bus, clock } = options;
  const users = new TenantCache<UserEntry>(options.maxEntries);
  const roles = new TenantCache<ReadonlySet<Permission>>(options.maxEntries);

  bus.subscribe((inv: Invalidation) => {
    if (inv.scope === 'user') {
      if (inv.subjectId === null) users.dropTenant(inv.tenantId);
      else users.delete(inv.tenantId, inv.subjectId);
    } else if (inv.scope === 'tenant') {
      users.dropTenant(inv.tenantId);
      roles.dropTenant(inv.tenantId);
    }
  });

  /** Reads through the cache; a value read while an invalidation was applied is not kept. */
  async function through<V>(cache: TenantCache<V>, tenantId: string, key: string, load: () => Promise<V>): Promise<V> {
    const now = clock.now().getTime();
    const hit = cache.get(tenantId, key, now);
    if (hit !== undefined) return hit;
    const generation = bus.generation;
    const value = await load();
    if (bus.generation === generation) cache.set(tenantId, key, value, now + bus.boundMs);
    return value;
  }

  const loadUser = async (tenantId: string, userId: string): Promise<UserEntry> => {
    const user = await db
      .selectFrom('users')
      .select('disabled')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!user) return NOBODY;
    const names = await userRoleNames(db, tenantId, userId);
    const held = new Set(names);
    if (Number(user.disabled) !== 0) return { active: false, roles: held, permissions: new Set() };
    return { active: true, roles: held, permissions: await permissionsOfRoles(db, tenantId, names) };
  };

  const userEntry = (tenantId: string, userId: string): Promise<UserEntry> => {
    assertId(tenantId, 'tenantId');
    assertId(userId, 'userId');
    return through(users, tenantId, userId, () => loadUser(tenantId, userId));
  };

  const roleNamesOf = (tenantId: string, roleNames: readonly string[]): string[] => {
    assertId(tenantId, 'tenantId');
    if (!Array.isArray(roleNames) || roleNames.some((n) => typeof n !== 'string')) {
      throw new TypeError('"roleNames" must be an array of strings.');
    }
    return [...new Set(roleNames)].sort();
  };
  const NO_PERMISSIONS: ReadonlySet<Permission> = new Set();

  return {
    async userPermissions(tenantId, userId) {
      const entry = await userEntry(tenantId, userId);
      return { active: entry.active, permissions: entry.permissions };
    },

    async userRoles(tenantId, userId) {
      return (await userEntry(tenantId, userId)).roles;
    },

    async rolePermissions(tenantId, roleNames) {
      const names = roleNamesOf(tenantId, roleNames);
      if (names.length === 0) return NO_PERMISSIONS;
      return through(roles, tenantId, names.join('\u0000'), () => permissionsOfRoles(db, tenantId, names));
    },

    peekUserPermissions(tenantId, userId) {
      assertId(tenantId, 'tenantId');
      assertId(userId, 'userId');
      // The entry itself: it is never changed once cached, and its permissions are the same set
      // object userPermissions hands out, so memos keyed by that set keep working.
      return users.get(tenantId, userId, clock.now().getTime());
    },

    peekRolePermissions(tenantId, roleNames) {
      const names = roleNamesOf(tenantId, roleNames);
      if (names.length === 0) return NO_PERMISSIONS;
      return roles.get(tenantId, names.join('\u0000'), clock.now().getTime());
    },
  };
}
