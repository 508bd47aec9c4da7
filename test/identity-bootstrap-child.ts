// Child process for the concurrent-bootstrap test: waits until the shared start time in argv[4],
// bootstraps the database (argv[2] URL or argv[3] data directory) and prints the result as JSON.
import { InvalidationBus, openDatabase } from '../src/db/index.js';
import { createIdentity } from '../src/identity/index.js';

const [url, dataDir, startAt] = process.argv.slice(2);
const handle = openDatabase({ url: url || undefined, dataDir: dataDir ?? '.' });
const identity = createIdentity({ db: handle.db, bus: new InvalidationBus({ handle }) });
await handle.ping();
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const result = await identity.bootstrap();
await handle.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
