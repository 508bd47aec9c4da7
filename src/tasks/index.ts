export { createTasks } from './tasks.js';
export type { Tasks, TasksOptions, ScheduleTaskInput, TaskView, TaskRunView, TaskScope } from './tasks.js';
export type { TaskTypeDefinition, TaskRunContext, TaskBackoff, TaskOwner } from './task-types.js';
export type { TaskSchedule } from './schedule.js';
export { taskScheduleSchema, nextSlot } from './schedule.js';
export { TaskRunner } from './runner.js';
export type { TaskFinishedEvent, TaskEventSink } from './task-events.js';
export { retryDelayMs, TASK_STATUSES } from './transitions.js';
export type { TaskStatus, RunOutcomeKind } from './transitions.js';
