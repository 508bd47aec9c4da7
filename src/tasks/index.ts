export { createTasks, scheduleTaskBody } from './tasks.js';
export type { Tasks, TasksOptions, TaskCredentialsOptions, ScheduleTaskInput, TaskView, TaskRunView, TaskScope } from './tasks.js';
export { taskApiClient } from './task-api.js';
export type { TaskApi, TaskApiRequest, TaskLatchkeyClient } from './task-api.js';
export { CredentialInvalidator, TASK_SECRETS_TYPE, createCredentialStrategy, createHttpCredentialIssuer } from './credentials/index.js';
export type {
  ChosenCredential,
  CredentialInvalidatorOptions,
  CredentialKind,
  CredentialRef,
  CredentialStrategy,
  CredentialStrategyOptions,
  ExternalCredentialIssuer,
  GrantRequest,
  HttpCredentialIssuerOptions,
  InvalidationOutcome,
  InvalidationReport,
  QueuedCredential,
  RunAs,
  TaskGrant,
  TaskSecrets,
  UserScope,
} from './credentials/index.js';
export type { TaskTypeDefinition, TaskRunContext, TaskBackoff, TaskOwner } from './task-types.js';
export type { TaskSchedule } from './schedule.js';
export { taskScheduleSchema, nextSlot } from './schedule.js';
export { TaskRunner } from './runner.js';
export type { TaskFinishedEvent, TaskEventSink } from './task-events.js';
export { retryDelayMs, TASK_STATUSES } from './transitions.js';
export type { TaskStatus, RunOutcomeKind } from './transitions.js';
export { connectorRequestTask, CONNECTOR_REQUEST_TASK } from './builtin/connector-request.js';
export type { ConnectorRequestParams, ConnectorRequestResult } from './builtin/connector-request.js';
