export { describeSettings, loadSettings, SETTING_DEFINITIONS } from './config.js';
export type { Settings, SettingsInput, SettingView } from './config.js';
export {
  LatchkeyError,
  ConfigError,
  DecryptionError,
  UnsafeModelChangeError,
  ERROR_STATUS,
  statusForCode,
  isLatchkeyError,
} from './errors.js';
export type { ErrorCode, LatchkeyErrorOptions } from './errors.js';
export { newId, base62, BASE62_ALPHABET } from './ids.js';
export { systemClock, manualClock } from './clock.js';
export type { Clock } from './clock.js';
export { parseDuration } from './duration.js';
export { createLogger, REDACT_PATHS, SECRET_FIELDS } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
export { createMetrics } from './metrics.js';
export type { Metrics } from './metrics.js';
export { parseInput, assertId, assertSafeInput, unsafeInput, stringError, fieldProblem, sentence, MAX_INPUT_DEPTH } from './validation.js';
export type { FieldProblem } from './validation.js';
export { counted, verb } from './plural.js';
export { Background } from './background.js';
export type { BackgroundTask } from './background.js';
