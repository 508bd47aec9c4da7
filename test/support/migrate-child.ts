// Child process for the concurrent-migration test: migrates the database at argv[2] and prints
// what it applied as one JSON line.
import { openDatabase, migrateToLatest } from '../../src/db/index.js';

const handle = openDatabase({ url: process.argv[2], dataDir: process.argv[3] ?? '.' });
const applied = await migrateToLatest(handle);
await handle.close();
process.stdout.write(`${JSON.stringify(applied)}\n`);
