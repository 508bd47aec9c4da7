import { createLogger, type Settings } from '../core/index.js';
import { createLatchkey, type Latchkey } from '../latchkey.js';

/**
 * Latchkey on the configured, already migrated database, for one command: no HTTP, no first-start
 * bootstrap, no new master key, nothing in the background; closed when `work` ends.
 *
 * @example
 * await withLatchkey(settingsFrom(command), (latchkey) => latchkey.dataKeys.rewrapAll());
 */
export async function withLatchkey<T>(settings: Settings, work: (latchkey: Latchkey) => Promise<T>): Promise<T> {
  const latchkey = await createLatchkey({
    settings,
    // Warnings go to stderr: stdout is the command's answer (`--json` output must stay parseable).
    logger: createLogger({ level: 'warn', destination: process.stderr }),
    migrate: false,
    http: false,
    bootstrap: false,
    allowKeyCreation: false,
  });
  try {
    return await work(latchkey);
  } finally {
    await latchkey.close();
  }
}
