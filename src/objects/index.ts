export { ObjectTypeRegistry, checkModelVersions } from './registry.js';
export type { Attributes, ModelVersion, ObjectType, ObjectTypeDefinition } from './registry.js';
export { EncryptedObjectStore } from './store.js';
export type {
  StoredObject,
  ListOptions,
  ListResult,
  OnUndecryptable,
  ObjectFailure,
  UpdateOptions,
  MaintenanceProgress,
  MaintenanceReport,
  EncryptedObjectStoreOptions,
  ObjectTransaction,
} from './store.js';
export { ObjectMaintenance, countOutdatedObjects } from './maintenance.js';
export type { ObjectMaintenanceOptions, RekeyDataKeysReport } from './maintenance.js';
