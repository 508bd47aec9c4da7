import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Latchkey } from '../latchkey.js';

/** Where `serve` leaves the first admin password when stdout is not a terminal (Jenkins' `initialAdminPassword`). */
export function initialPasswordPath(dataDir: string): string {
  return join(dataDir, 'initial-admin-password');
}

/** Writes the password alone on one line, readable by the owner only; replaces a stale file. */
export function writeInitialPassword(path: string, dataDir: string, password: string): void {
  mkdirSync(dataDir, { recursive: true });
  rmSync(path, { force: true });
  // 'wx' after the removal: never follow a link planted at the path, never widen an existing file's mode.
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${password}\n`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Deletes the password file once its password no longer opens the account: checked at start and
 * whenever the user changes (a password change is announced on the invalidation bus, by this
 * process or another). Returns a function that stops watching.
 */
export function watchInitialPassword(latchkey: Latchkey, path: string, account: { tenantId: string; userId: string }): () => void {
  const check = async () => {
    let password: string;
    try {
      password = readFileSync(path, 'utf8').trim();
    } catch {
      stop();
      return;
    }
    const stillValid = await latchkey.identity.users.passwordMatches(account.tenantId, account.userId, password).catch(() => true);
    if (!stillValid) {
      rmSync(path, { force: true });
      latchkey.logger.info({ file: path }, 'The initial admin password was changed; deleted the file that held it.');
      stop();
    }
  };
  const unsubscribe = latchkey.bus.subscribe((change) => {
    if ((change.scope === 'user' && change.subjectId === account.userId) || (change.scope === 'tenant' && change.tenantId === account.tenantId)) {
      void check();
    }
  });
  const stop = () => {
    unsubscribe();
  };
  void check();
  return stop;
}
