import type { Kysely } from 'kysely';
import { systemClock, type Clock, type Logger } from '../core/index.js';
import type { Database, DatabaseHandle, InvalidationBus } from '../db/index.js';
import { createAuditLog, type AuditLog } from './audit-log.js';
import { createAuthorizer, type Authorizer } from './authorizer.js';
import { bootstrap, type BootstrapResult } from './bootstrap.js';
import type { IdentityDeps } from './deps.js';
import { createGroupService, type GroupService } from './groups.js';
import { createRoleService, type RoleService } from './roles.js';
import { createSessionService, type SessionOptions, type SessionService } from './sessions.js';
import { createTenantService, type TenantService } from './tenants.js';
import { createUserService, type UserService } from './users.js';

export interface IdentityOptions {
  db: Kysely<Database>;
  /** The database handle's `appendRows`, for the audit log's group commit (default inserts through `db`). */
  appendRows?: DatabaseHandle['appendRows'];
  /** Started by the caller; identity publishes every change on it and drops cached answers by it. */
  bus: InvalidationBus;
  clock?: Clock;
  logger?: Logger;
  /** Session lifetime and failed-login limits. */
  sessions?: SessionOptions;
}

/** Tenants, users, groups, roles, authorization, console sessions and the audit log. */
export interface Identity {
  tenants: TenantService;
  users: UserService;
  groups: GroupService;
  roles: RoleService;
  authorizer: Authorizer;
  sessions: SessionService;
  audit: AuditLog;
  /**
   * First start on an empty database: creates tenant "default" and user "admin" (role admin) with
   * a random password of ≥ 20 base62 chars, returned ONCE here (never stored in plain, never
   * logged). Returns { created: false } when any tenant exists. Safe when two processes start at
   * once (exactly one creates).
   */
  bootstrap(): Promise<BootstrapResult>;
}

/**
 * Builds the identity module from its dependencies. Mutations take an Actor (for the audit log);
 * checking that the actor may make them is the caller's job (routes check permissions).
 *
 * @example
 * const bus = new InvalidationBus({ handle });
 * await bus.start();
 * const identity = createIdentity({ db: handle.db, bus, logger });
 * const first = await identity.bootstrap();
 * if (first.created) console.log(`Initial admin password: ${first.password}`);
 */
export function createIdentity(options: IdentityOptions): Identity {
  const clock = options.clock ?? systemClock;
  const audit = createAuditLog({ db: options.db, clock, ...(options.appendRows ? { appendRows: options.appendRows } : {}) });
  const deps: IdentityDeps = { db: options.db, bus: options.bus, clock, audit, logger: options.logger };
  return {
    tenants: createTenantService(deps),
    users: createUserService(deps),
    groups: createGroupService(deps),
    roles: createRoleService(deps),
    authorizer: createAuthorizer({ db: options.db, bus: options.bus, clock }),
    sessions: createSessionService(deps, options.sessions),
    audit,
    bootstrap: () => bootstrap(deps),
  };
}
