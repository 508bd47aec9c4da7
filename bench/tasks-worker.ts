// One worker process for `npm run bench:tasks`: Latchkey's task engine (createTasks on its own
// database handle) or graphile-worker (`run` in its own schema), both running a no-op task with
// the same concurrency. Says "ready" once set up, starts its runner on a "go" line on stdin, and
// stops gracefully when stdin ends. Configured by BENCH_TASKS_WORKER (JSON).
import { createInterface } from 'node:readline';
import { run, Logger, type Runner } from 'graphile-worker';
import { z } from 'zod';
import { openDatabase } from '../src/db/index.js';
import { createTasks } from '../src/tasks/index.js';

const workerConfig = z.object({
  engine: z.enum(['latchkey', 'graphile']),
  /** The no-op task's type (Latchkey) or identifier (graphile-worker). */
  task: z.string(),
  url: z.string().optional(),
  dataDir: z.string(),
  concurrency: z.number().int().min(1),
  /** graphile-worker's schema. */
  schema: z.string().optional(),
});
const config = workerConfig.parse(JSON.parse(process.env['BENCH_TASKS_WORKER'] ?? '{}'));
const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
const closed = new Promise<void>((resolve) => lines.once('close', () => resolve()));

// Warnings and errors only, as Latchkey's engine logs nothing per task here.
const quiet = new Logger(() => (level, message) => {
  if (level === 'warning' || level === 'error') process.stderr.write(`${level}: ${message}\n`);
});

if (config.engine === 'latchkey') {
  const handle = openDatabase({ url: config.url, dataDir: config.dataDir });
  await handle.ping();
  const tasks = createTasks({ handle, concurrency: config.concurrency });
  tasks.register({ type: config.task, paramsSchema: z.object({}), run: () => {} });
  process.stdout.write('ready\n');
  await go;
  await tasks.start();
  await closed;
  await tasks.stop();
  await handle.close();
} else {
  process.stdout.write('ready\n');
  await go;
  const runner: Runner = await run({
    connectionString: config.url,
    schema: config.schema,
    concurrency: config.concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quiet,
    taskList: { [config.task]: async () => {} },
  });
  await closed;
  await runner.stop();
}
process.exit(0);
