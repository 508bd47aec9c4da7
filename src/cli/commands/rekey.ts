import { Command, Option } from 'commander';
import { counted, LatchkeyError } from '../../core/index.js';
import { withLatchkey } from '../with-latchkey.js';
import { createProgress } from '../progress.js';
import { DATABASE_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

export function rekeyCommand(): Command {
  return withSettingsOptions(new Command('rekey'), DATABASE_SETTINGS)
    .description(
      'Rewrap every tenant data key under the primary master key; with --data-keys, also give every tenant a fresh data key and re-encrypt every object. Resumable and safe while servers run.',
    )
    .option('--data-keys', 'also rotate data keys and re-encrypt every object', false)
    .addOption(new Option('--batch-size <n>', 'objects per transaction').default('500'))
    .addOption(new Option('--settle <ms>', 'wait for servers to drop cached data keys (ms)').default('5000').hideHelp())
    .option('--json', 'print the report as JSON', false)
    .action(async (opts: { dataKeys: boolean; batchSize: string; settle: string; json: boolean }, command: Command) => {
      const settings = settingsFrom(command);
      const batchSize = Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
        throw new LatchkeyError('invalid_request', `--batch-size must be a whole number from 1 to 10000, got "${opts.batchSize}".`);
      }
      const log = (line: string) => {
        if (!opts.json) process.stdout.write(`${line}\n`);
      };
      await withLatchkey(settings, async (latchkey) => {
        const rewrapProgress = createProgress('Rewrapping data keys');
        let reencryptProgress: ReturnType<typeof createProgress> | undefined;
        // The same run as the `latchkey.rekey` task's (ObjectMaintenance.rekey), shown on the terminal.
        const report = await latchkey.maintenance.rekey({
          dataKeys: opts.dataKeys,
          batchSize,
          settleMs: Number(opts.settle),
          onPhase: (phase, detail) => {
            if (phase === 'settling') log(`Waiting ${detail} for running servers to pick up the new data keys.`);
            if (phase === 'reencrypting') {
              log(`Re-encrypting ${detail}.`);
              reencryptProgress = createProgress('Re-encrypting objects');
            }
          },
          onRewrapped: (rewrapped) => {
            rewrapProgress.stop();
            log(`Rewrapped ${counted(rewrapped, 'data key')} under master key ${latchkey.keyring.primary.id}.`);
          },
          onProgress: (phase, done, total) => (phase === 'rewrapping' ? rewrapProgress.update(done, total) : reencryptProgress?.update(done, total)),
        });
        reencryptProgress?.stop();
        if (report.dataKeys) {
          const result = report.dataKeys;
          if (result.resumed) log('Resumed an interrupted rekey run.');
          log(`Rotated the data keys of ${counted(result.rotatedTenants, 'tenant')}.`);
          for (const [type, count] of Object.entries(result.reencrypted)) log(`Re-encrypted ${counted(count, `${type} object`)}.`);
          log(`Deleted ${counted(result.prunedDataKeys, 'retired data key')}.`);
        }
        for (const f of report.dataKeyFailures) log(`Failed: data key ${f.dataKeyId}: ${f.reason}`);
        for (const f of report.failures) log(`Failed: ${f.type} ${f.id}: ${f.code}: ${f.message}`);
        if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        if (report.failures.length > 0 || report.dataKeyFailures.length > 0) {
          log('Some items failed; fix them (see `latchkey doctor --scan`) and run the same command again to resume.');
          process.exitCode = 1;
        }
      });
    });
}
