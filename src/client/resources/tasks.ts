import type { BodyOf, QueryOf, Transport } from '../transport.js';

/**
 * `latchkey.tasks`: schedule tasks (with `runAs`, granted credentials that die with the task),
 * list them, read their runs, run now, enable, disable, delete one or many.
 *
 * @example
 * const task = await latchkey.tasks.create({ type: 'connector_request', params: { connectorId, method: 'GET', path: '/user' }, schedule: { every: '1h' }, runAs: { endUserId: 'customer-42' } });
 * const { runs } = await latchkey.tasks.get(task.id);
 */
export function tasks(t: Transport) {
  const at = (id: string) => ({ params: { path: { id } } });
  return {
    create: (body: BodyOf<'createTask'>) => t.send(t.http.POST('/api/v1/tasks', { body })),
    list: (query: QueryOf<'listTasks'> = {}) => t.send(t.http.GET('/api/v1/tasks', { params: { query } })),
    get: (id: string) => t.send(t.http.GET('/api/v1/tasks/{id}', at(id))),
    runNow: (id: string) => t.send(t.http.POST('/api/v1/tasks/{id}/_run', at(id))),
    enable: (id: string) => t.send(t.http.POST('/api/v1/tasks/{id}/_enable', at(id))),
    disable: (id: string) => t.send(t.http.POST('/api/v1/tasks/{id}/_disable', at(id))),
    delete: (id: string) => t.send(t.http.DELETE('/api/v1/tasks/{id}', at(id))),
    /** One transaction; ids no task has are answered in `notFound`. */
    deleteMany: (ids: string[]) => t.send(t.http.POST('/api/v1/tasks/_bulk_delete', { body: { ids } })),
  };
}
