import type { Generated } from 'kysely';

/** Tenants' data keys, each wrapped (AES-256-GCM) by a master key. */
export interface DataKeysTable {
  id: string;
  tenant_id: string;
  /** Sealed data key; its header names the master key that wrapped it. */
  wrapped_key: string;
  master_key_id: string;
  /** `primary`: encrypts new values; `retired`: decrypts only, until `rekey --data-keys` empties it. */
  state: 'primary' | 'retired';
  created_at: string;
  updated_at: string;
}

/** Every object of the encrypted object store. */
export interface ObjectsTable {
  id: string;
  type: string;
  tenant_id: string;
  model_version: number;
  /** JSON of the plain attributes. */
  attributes: string;
  /** JSON map of attribute name to sealed value. */
  secrets: string;
  /** JSON list of the attribute names bound into every secret's AAD when it was written. */
  aad_attributes: string;
  /** Data key that sealed the secrets, or null when the object holds none. */
  data_key_id: string | null;
  revision: Generated<number>;
  created_at: string;
  updated_at: string;
}

/** Store-wide maintenance jobs, so a crashed run is resumed rather than restarted. */
export interface MaintenanceRunsTable {
  id: string;
  kind: string;
  started_at: string;
  finished_at: string | null;
}

export interface Database {
  maintenance_runs: MaintenanceRunsTable;
  data_keys: DataKeysTable;
  objects: ObjectsTable;
}
