// The library entry: `createLatchkey(options)` and the public types of each module.
export { createLatchkey, builtinRegistry, BUILTIN_OBJECT_TYPES } from './latchkey.js';
export type { Latchkey, LatchkeyOptions, LatchkeyOAuthOptions, LatchkeyWebhookOptions, LatchkeyTaskOptions } from './latchkey.js';
export { loadSettings, LatchkeyError, ConfigError, DecryptionError, UnsafeModelChangeError, createLogger } from './core/index.js';
export type { Settings, SettingsInput, ErrorCode, Logger } from './core/index.js';
export { generateMasterKey, Keyring } from './crypto/index.js';
export { ObjectTypeRegistry, EncryptedObjectStore } from './objects/index.js';
export type { ObjectTypeDefinition, ModelVersion, StoredObject, ListOptions, ListResult } from './objects/index.js';
export type { Tasks, TaskTypeDefinition, TaskRunContext, TaskBackoff, TaskOwner, TaskSchedule, ScheduleTaskInput, TaskView, TaskRunView, TaskStatus } from './tasks/index.js';
