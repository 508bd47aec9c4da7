export type { DatabaseHandle, DialectName, PoolStats } from './adapter.js';
export type {
  Database,
  DataKeysTable,
  ObjectsTable,
  MaintenanceRunsTable,
  TenantsTable,
  UsersTable,
  GroupsTable,
  GroupMembersTable,
  RolesTable,
  RoleBindingsTable,
  SessionsTable,
  ApiKeysTable,
  ApiKeyRateWindowsTable,
  AuditEventsTable,
  InvalidationsTable,
  WebhookDeliveriesTable,
  WebhookDeliveryAttemptsTable,
  TasksTable,
  TaskRunsTable,
  TaskCredentialsTable,
  CredentialsToInvalidateTable,
} from './schema.js';
export { openDatabase, sqlitePath } from './open.js';
export type { OpenDatabaseOptions } from './open.js';
export { openSqlite } from './sqlite.js';
export type { SqliteOptions } from './sqlite.js';
export { openPostgres, describePostgresUrl } from './postgres.js';
export type { PostgresOptions } from './postgres.js';
export { migrateToLatest, migrateTo, migrationStatus, pendingMigrations } from './migrator.js';
export type { MigrationStatus } from './migrator.js';
export { registerDatabaseMetrics } from './metrics.js';
export { InvalidationBus } from './invalidation-bus.js';
export type { Invalidation, InvalidationBusOptions, WakeTopic } from './invalidation-bus.js';
export { notify } from './notify.js';
export { runTransaction, withSavepoint, isLockTimeout, deleteDataKeyIfUnused, claimRows } from './transaction.js';
export type { TransactionOptions, Executor } from './transaction.js';
