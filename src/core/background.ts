/** One piece of background work: something that runs between `start` and `stop` (a poller, a timer). */
export interface BackgroundTask {
  name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/**
 * The background work of one process, started together and stopped in reverse order. A start
 * that fails stops what already started before the error reaches the caller, so a failed start
 * leaves nothing running. `start` and `stop` may be called more than once.
 *
 * @example
 * const background = new Background();
 * background.add({ name: 'invalidation bus', start: () => bus.start(), stop: () => bus.stop() });
 * await background.start();
 * await background.stop();
 */
export class Background {
  readonly #tasks: BackgroundTask[] = [];
  #running: BackgroundTask[] = [];
  #starting: Promise<void> | undefined;

  add(task: BackgroundTask): void {
    if (this.#running.length > 0 || this.#starting) throw new Error(`Background task "${task.name}" added after the start.`);
    this.#tasks.push(task);
  }

  get started(): boolean {
    return this.#running.length > 0;
  }

  start(): Promise<void> {
    this.#starting ??= (async () => {
      if (this.#running.length > 0) return;
      try {
        for (const task of this.#tasks) {
          await task.start();
          this.#running.push(task);
        }
      } catch (err) {
        await this.stop();
        throw err;
      }
    })().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Stops every started task, newest first; a task whose stop fails does not keep the others running. */
  async stop(): Promise<void> {
    const running = this.#running.reverse();
    this.#running = [];
    let failure: unknown;
    for (const task of running) {
      try {
        await task.stop();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
