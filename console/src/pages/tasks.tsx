import { useState } from 'preact/hooks';
import { api, asApiError, query } from '../api';
import { EmptyState, ErrorAlert, NeedsPermission, StatusLine } from '../components/alert';
import { Dialog } from '../components/dialog';
import { Field, fieldMessage } from '../components/field';
import { Pager, usePager } from '../components/pager';
import { duration, when } from '../format';
import { TASK_STATUSES, type Me, type Task, type TaskOutcome, type TaskSchedule, type TaskStatus, type TaskWithRuns } from '../types';
import { useLoad } from '../use-load';
import { Confirm } from '../components/confirm';

const PAGE_SIZE = 25;

const OUTCOME_LABELS: Record<TaskOutcome, string> = { succeeded: 'succeeded', failed: 'failed', timed_out: 'timed out', lease_expired: 'lost its worker' };

/** When a task runs, in words. */
function scheduleText(schedule: TaskSchedule | null): string {
  if (schedule === null) return 'once';
  if ('at' in schedule) return `once, at ${when(schedule.at)}`;
  if ('every' in schedule) return `every ${typeof schedule.every === 'number' ? duration(schedule.every) : schedule.every}`;
  return `cron ${schedule.cron} (${schedule.timezone ?? 'UTC'})`;
}

/** A task's name in labels: its type and id. */
const named = (task: Task) => `${task.type} ${task.id}`;

/** The task's error next to it: the row's own failure if an action failed, else nothing. */
type RowError = { id: string; message: string };

/** Tasks of the tenant: filters, pages, run now, enable or disable, delete one or many, and a task's run history. */
export function TasksPage({ me }: { me: Me }) {
  const canRead = me.permissions.includes('tasks:read');
  const canWrite = me.permissions.includes('tasks:write');
  const [status, setStatus] = useState<'' | TaskStatus>('');
  const [typeInput, setTypeInput] = useState('');
  const [type, setType] = useState('');
  const pager = usePager();
  const tasks = useLoad(
    () => (canRead ? api<{ items: Task[]; next?: string }>('GET', `/tasks${query({ status, type, limit: PAGE_SIZE, after: pager.cursor })}`) : Promise.resolve({ items: [] })),
    [canRead, status, type, pager.cursor],
  );
  const [selected, setSelected] = useState<string[]>([]);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState<string | undefined>();
  const [rowError, setRowError] = useState<RowError | undefined>();
  const [showing, setShowing] = useState<string | undefined>();
  const [deleting, setDeleting] = useState<Task | undefined>();
  const [bulkDeleting, setBulkDeleting] = useState(false);
  const [detailVersion, setDetailVersion] = useState(0);

  if (!canRead) {
    return (
      <>
        <h1>Tasks</h1>
        <NeedsPermission permission="tasks:read" what="see tasks" />
      </>
    );
  }

  const filtered = status !== '' || type !== '';
  const items = tasks.data?.items ?? [];
  const typeError = fieldMessage('Type', tasks.error?.field('type'));
  const statusError = fieldMessage('Status', tasks.error?.field('status'));
  const listError = tasks.error !== undefined && typeError === undefined && statusError === undefined ? tasks.error.message : undefined;

  const filter = (next: { status?: '' | TaskStatus; type?: string }) => {
    pager.reset();
    setSelected([]);
    if (next.status !== undefined) setStatus(next.status);
    if (next.type !== undefined) setType(next.type);
  };

  const act = async (task: Task, action: '_run' | '_enable' | '_disable', done: string) => {
    setBusy(task.id);
    setRowError(undefined);
    try {
      await api<Task>('POST', `/tasks/${task.id}/${action}`);
      await tasks.reload();
      setDetailVersion((v) => v + 1);
      setMessage(done);
    } catch (err) {
      setRowError({ id: task.id, message: asApiError(err).message });
    } finally {
      setBusy(undefined);
    }
  };

  const pageIds = items.map((t) => t.id);
  const allSelected = pageIds.length > 0 && pageIds.every((id) => selected.includes(id));
  const shown = items.find((t) => t.id === showing);

  return (
    <>
      <h1>Tasks</h1>
      <p class="lead">Work Latchkey runs in the background for your tenant: once, at an interval or on a cron schedule, with retries. Each run is kept with its outcome and error.</p>
      <form
        class="inline-form"
        aria-label="Filter tasks"
        onSubmit={(event) => {
          event.preventDefault();
          filter({ type: typeInput.trim() });
        }}
      >
        <Field id="task-status" label="Status" error={statusError}>
          {(aria) => (
            <select {...aria} value={status} onChange={(e) => filter({ status: e.currentTarget.value as '' | TaskStatus })}>
              <option value="">Every status</option>
              {TASK_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id="task-type" label="Type" hint="The exact task type, e.g. connector_request." error={typeError}>
          {(aria) => <input {...aria} name="type" maxLength={64} value={typeInput} onInput={(e) => setTypeInput(e.currentTarget.value)} />}
        </Field>
        <button type="submit" class="secondary">
          Apply filters
        </button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setDetailVersion((v) => v + 1);
            void tasks.reload();
          }}
          disabled={tasks.loading}
        >
          {tasks.loading ? 'Loading…' : 'Reload tasks'}
        </button>
      </form>
      <StatusLine message={message} />
      <section aria-labelledby="tasks-title" aria-busy={tasks.loading}>
        <h2 id="tasks-title">Tasks</h2>
        {listError !== undefined && <ErrorAlert>{listError}</ErrorAlert>}
        {tasks.data === undefined && tasks.error === undefined && <p class="loading">Loading tasks…</p>}
        {tasks.data !== undefined && items.length === 0 && (
          <EmptyState title={filtered ? 'No task matches these filters' : 'No tasks yet'}>
            {filtered ? (
              <p>Choose another status or type, or clear the filters.</p>
            ) : (
              <p>
                Schedule one with <code>POST /api/v1/tasks</code> (for instance <code>{'{"type":"connector_request","params":{…},"schedule":{"every":"1h"},"runAs":"caller"}'}</code>) or
                with the SDK&rsquo;s <code>client.tasks.create({'{ type, params, schedule }'})</code>; it appears here with each of its runs.
              </p>
            )}
          </EmptyState>
        )}
        {items.length > 0 && (
          <>
            {canWrite && (
              <div class="buttons">
                <button type="button" class="danger" disabled={selected.length === 0} onClick={() => setBulkDeleting(true)}>
                  Delete selected ({selected.length})
                </button>
              </div>
            )}
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    {canWrite && (
                      <th scope="col">
                        <input
                          type="checkbox"
                          aria-label="Select every task on this page"
                          checked={allSelected}
                          onChange={(e) => setSelected(e.currentTarget.checked ? [...new Set([...selected, ...pageIds])] : selected.filter((id) => !pageIds.includes(id)))}
                        />
                      </th>
                    )}
                    <th scope="col">Task</th>
                    <th scope="col">Status</th>
                    <th scope="col">Enabled</th>
                    <th scope="col">Next run</th>
                    <th scope="col">Last run</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((task) => (
                    <tr key={task.id}>
                      {canWrite && (
                        <td>
                          <input
                            type="checkbox"
                            aria-label={`Select ${named(task)}`}
                            checked={selected.includes(task.id)}
                            onChange={(e) => setSelected(e.currentTarget.checked ? [...selected, task.id] : selected.filter((id) => id !== task.id))}
                          />
                        </td>
                      )}
                      <th scope="row">
                        <code>{task.type}</code>
                        <div class="hint">
                          <code>{task.id}</code> · {scheduleText(task.schedule)}
                        </div>
                      </th>
                      <td>
                        <span class={`badge ${task.status}`} data-status>
                          {task.status}
                        </span>
                      </td>
                      <td>
                        <span class={`badge ${task.enabled ? 'enabled' : 'disabled'}`}>{task.enabled ? 'enabled' : 'disabled'}</span>
                      </td>
                      <td>{task.enabled ? when(task.nextRunAt, '—') : '— (disabled)'}</td>
                      <td>
                        {task.lastOutcome === null ? 'never run' : `${OUTCOME_LABELS[task.lastOutcome]}, ${when(task.lastRunAt)}`}
                        {task.lastError !== null && (
                          <div class="field-error">
                            <code>{task.lastError.code}</code>: {task.lastError.message}
                          </div>
                        )}
                      </td>
                      <td class="actions">
                        <button type="button" class="secondary" aria-label={`Runs of ${named(task)}`} aria-pressed={showing === task.id} onClick={() => setShowing(showing === task.id ? undefined : task.id)}>
                          Runs
                        </button>
                        {canWrite && (
                          <>
                            <button type="button" class="secondary" aria-label={`Run ${named(task)} now`} disabled={busy === task.id} onClick={() => void act(task, '_run', `${named(task)} will run now.`)}>
                              Run now
                            </button>
                            <button
                              type="button"
                              class="secondary"
                              aria-label={`${task.enabled ? 'Disable' : 'Enable'} ${named(task)}`}
                              disabled={busy === task.id}
                              onClick={() => void act(task, task.enabled ? '_disable' : '_enable', `${named(task)} ${task.enabled ? 'disabled' : 'enabled'}.`)}
                            >
                              {task.enabled ? 'Disable' : 'Enable'}
                            </button>
                            <button type="button" class="danger" aria-label={`Delete ${named(task)}`} onClick={() => setDeleting(task)}>
                              Delete
                            </button>
                          </>
                        )}
                        {rowError?.id === task.id && (
                          <div class="field-error" role="alert">
                            {rowError.message}
                          </div>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
        <Pager
          label="Task pages"
          page={pager.page}
          hasNext={tasks.data?.next !== undefined}
          busy={tasks.loading}
          onPrevious={() => {
            setSelected([]);
            pager.previous();
          }}
          onNext={() => {
            const next = tasks.data?.next;
            if (next === undefined) return;
            setSelected([]);
            pager.next(next);
          }}
        />
      </section>
      {shown !== undefined && <TaskRuns key={`${shown.id}-${detailVersion}`} task={shown} />}
      <Dialog title="Delete task" open={deleting !== undefined} onClose={() => setDeleting(undefined)}>
        {deleting !== undefined && (
          <Confirm
            action="Delete task"
            busyLabel="Deleting…"
            onClose={() => setDeleting(undefined)}
            run={async () => {
              await api('DELETE', `/tasks/${deleting.id}`);
              setDeleting(undefined);
              setSelected((s) => s.filter((id) => id !== deleting.id));
              if (showing === deleting.id) setShowing(undefined);
              await tasks.reload();
              setMessage(`${named(deleting)} deleted.`);
            }}
          >
            Delete <code>{deleting.type}</code> <code>{deleting.id}</code> and its run history? The credentials it holds are invalidated. This cannot be undone.
          </Confirm>
        )}
      </Dialog>
      <Dialog title="Delete selected tasks" open={bulkDeleting} onClose={() => setBulkDeleting(false)}>
        {bulkDeleting && (
          <Confirm
            action={`Delete ${selected.length} ${selected.length === 1 ? 'task' : 'tasks'}`}
            busyLabel="Deleting…"
            onClose={() => setBulkDeleting(false)}
            run={async () => {
              const result = await api<{ removed: string[]; notFound: string[] }>('POST', '/tasks/_bulk_delete', { ids: selected });
              setBulkDeleting(false);
              setSelected([]);
              if (showing !== undefined && result.removed.includes(showing)) setShowing(undefined);
              await tasks.reload();
              const gone = result.notFound.length > 0 ? ` ${result.notFound.length} ${result.notFound.length === 1 ? 'was' : 'were'} already gone.` : '';
              setMessage(`${result.removed.length} ${result.removed.length === 1 ? 'task' : 'tasks'} deleted.${gone}`);
            }}
          >
            Delete the {selected.length} selected {selected.length === 1 ? 'task' : 'tasks'} and their run history? The credentials they hold are invalidated. This cannot be undone.
          </Confirm>
        )}
      </Dialog>
    </>
  );
}

/** One task's facts and its latest runs, newest first, each with its error. */
function TaskRuns({ task }: { task: Task }) {
  const detail = useLoad(() => api<TaskWithRuns>('GET', `/tasks/${task.id}`), [task.id]);
  const t = detail.data;
  return (
    <section aria-labelledby="task-runs-title" aria-busy={detail.loading}>
      <h2 id="task-runs-title">
        Runs of <code>{task.type}</code> <code>{task.id}</code>
      </h2>
      {detail.error !== undefined && <ErrorAlert>{detail.error.message}</ErrorAlert>}
      {t === undefined && detail.error === undefined && <p class="loading">Loading runs…</p>}
      {t !== undefined && (
        <>
          <dl class="facts">
            <dt>Schedule</dt>
            <dd>{scheduleText(t.schedule)}</dd>
            <dt>Runs as</dt>
            <dd>
              {t.runAs === null ? 'Latchkey (no user)' : t.runAs.kind === 'user' ? <code>{t.runAs.userId}</code> : <>end user <code>{t.runAs.endUserId}</code> (for <code>{t.runAs.userId}</code>)</>}
            </dd>
            <dt>Credentials</dt>
            <dd>{t.credentials.length === 0 ? 'none' : t.credentials.map((c) => `${c.kind} ${c.id}`).join(', ')}</dd>
            <dt>Last error</dt>
            <dd>
              {t.lastError === null ? (
                'none'
              ) : (
                <span class="field-error">
                  <code>{t.lastError.code}</code>: {t.lastError.message}
                </span>
              )}
            </dd>
            {t.lastResult !== null && t.lastResult !== undefined && (
              <>
                <dt>Last result</dt>
                <dd>
                  <pre class="details">{JSON.stringify(t.lastResult, null, 2)}</pre>
                </dd>
              </>
            )}
            {t.progress !== null && (
              <>
                <dt>Progress</dt>
                <dd>
                  <pre class="details">{JSON.stringify(t.progress, null, 2)}</pre>
                </dd>
              </>
            )}
            <dt>Created</dt>
            <dd>{when(t.createdAt)}</dd>
          </dl>
          {t.runs.length === 0 ? (
            <EmptyState title="No runs yet">
              <p>{t.enabled ? `It runs next ${when(t.nextRunAt, 'when it is due')}; use Run now to run it at once.` : 'It is disabled: enable it, or use Run now.'}</p>
            </EmptyState>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Started</th>
                    <th scope="col">Attempt</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Duration</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {t.runs.map((run) => (
                    <tr key={`${run.slot}-${run.attempt}`}>
                      <th scope="row">{when(run.startedAt)}</th>
                      <td>{run.attempt}</td>
                      <td>
                        <span class={`badge ${run.outcome === 'succeeded' ? 'succeeded' : 'failed'}`}>{OUTCOME_LABELS[run.outcome]}</span>
                      </td>
                      <td>{duration(run.durationMs)}</td>
                      <td>
                        {run.errorCode === null && run.error === null ? (
                          '—'
                        ) : (
                          <span class="field-error">
                            {run.errorCode !== null && <code>{run.errorCode}</code>}
                            {run.errorCode !== null && run.error !== null && ': '}
                            {run.error}
                          </span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

