import { Command } from 'commander';
import { counted, createLogger } from '../../core/index.js';
import { connectDatabase } from '../../assembly/storage.js';
import { migrateToLatest } from '../../db/index.js';
import { builtinRegistry, createLatchkey } from '../../latchkey.js';
import { countOutdatedObjects } from '../../objects/index.js';
import { createProgress } from '../progress.js';
import { DATABASE_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

export function migrateCommand(): Command {
  return withSettingsOptions(new Command('migrate'), DATABASE_SETTINGS)
    .description('Apply pending database migrations, then upgrade stored objects to the latest model versions.')
    .action(async (_opts, command: Command) => {
      const settings = settingsFrom(command);
      const out = process.stdout;
      const database = await connectDatabase(settings);
      let outdated: Record<string, number>;
      try {
        const applied = await migrateToLatest(database, (name) => out.write(`Applied migration ${name}.\n`));
        if (applied.length === 0) out.write('The database schema is up to date.\n');
        outdated = await countOutdatedObjects(database.db, builtinRegistry());
      } finally {
        await database.close();
      }
      if (Object.keys(outdated).length === 0) {
        out.write('Every stored object is at its latest model version.\n');
        return;
      }
      // Upgrading rewrites secrets, so only this step needs the master key.
      const latchkey = await createLatchkey({ settings, logger: createLogger({ level: 'warn' }), migrate: false, http: false, bootstrap: false });
      try {
        const progress = createProgress('Upgrading objects');
        const report = await latchkey.maintenance.upgradeModelVersions({ onProgress: (d, t) => progress.update(d, t) });
        progress.stop();
        for (const [type, count] of Object.entries(report.byType)) out.write(`Upgraded ${counted(count, `${type} object`)}.\n`);
        for (const f of report.failures) out.write(`Failed: ${f.type} ${f.id}: ${f.code}\n`);
        if (report.failures.length > 0) process.exitCode = 1;
      } finally {
        await latchkey.close();
      }
    });
}
