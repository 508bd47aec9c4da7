import { Command } from 'commander';
import { generateMasterKey } from '../../crypto/index.js';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description('Print a new random master key (32 bytes, base64) for LATCHKEY_ENCRYPTION_KEY or a key file.')
    .action(() => {
      process.stdout.write(`${generateMasterKey()}\n`);
    });
}
