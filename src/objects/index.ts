export { ObjectTypeRegistry, checkModelVersions } from './registry.js';
export { defineObjectType, typeNameOf } from './registry.js';
export type { Attributes, AttributesOf, PlainAttributesOf, LatestModelVersion, ModelVersion, ObjectType, ObjectTypeDefinition, ObjectTypeRef } from './registry.js';
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
  ClaimOptions,
} from './store.js';
export { ObjectMaintenance, countOutdatedObjects } from './maintenance.js';
export type { ObjectMaintenanceOptions, RekeyDataKeysReport, RekeyReport, RekeyOptions, RekeyPhase } from './maintenance.js';
export { configurationFinding, createDiagnostics, databaseFix, describeError, migrationFinding, storageFindings } from './diagnostics.js';
export type { CheckStatus, Diagnostics, Finding, StorageCheckOptions, StorageParts } from './diagnostics.js';
