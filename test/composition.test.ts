// How createLatchkey starts and stops: nothing in the background until asked (CLI commands touch
// only the database), and a start that fails leaves nothing running, on both databases.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { it } from 'node:test';
import { Background, loadSettings } from '../src/core/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { ROOT, cliEnv, freePort } from './support/cli.js';
import { createTestDatabase, eachDialect, latchkeyEnv } from './support/databases.js';

it('a background start that fails stops, newest first, what already started', async () => {
  const events: string[] = [];
  const background = new Background();
  background.add({ name: 'a', start: () => void events.push('start a'), stop: () => void events.push('stop a') });
  background.add({ name: 'b', start: () => void events.push('start b'), stop: () => void events.push('stop b') });
  background.add({
    name: 'c',
    start: () => {
      throw new Error('c cannot start');
    },
    stop: () => void events.push('stop c'),
  });
  await assert.rejects(background.start(), /c cannot start/);
  assert.deepEqual(events, ['start a', 'start b', 'stop b', 'stop a']);
  assert.equal(background.started, false);
});

/** Runs a script in a child process with tsx and resolves with its exit code and output. */
async function runChild(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...cliEnv(env), LK_LATCHKEY: new URL('../src/latchkey.ts', import.meta.url).href, LK_CORE: new URL('../src/core/index.ts', import.meta.url).href },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  // Generous: only a process kept alive by something left running reaches it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

await eachDialect('createLatchkey lifecycle', (dialect) => {
  it('starts nothing in the background until listen() or background.start()', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent', LATCHKEY_PORT: String(await freePort()) }) });
      const latchkey = await createLatchkey({ settings, bootstrap: false });
      try {
        assert.equal(latchkey.background.started, false);
        const server = await latchkey.listen();
        assert.equal(latchkey.background.started, true);
        assert.equal((await fetch(`${server.address}/healthz`)).status, 200);
      } finally {
        await latchkey.close();
      }
      assert.equal(latchkey.background.started, false);
    } finally {
      await tdb.dispose();
    }
  });

  it('a start that fails after the database opened leaves nothing running: the process exits by itself', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      // The first-start hook throws once the database is open and migrated (a PostgreSQL pool left
      // open would keep the process alive).
      const script = `
        const { createLatchkey } = await import(process.env.LK_LATCHKEY);
        const { loadSettings } = await import(process.env.LK_CORE);
        try {
          await createLatchkey({ settings: loadSettings({ env: process.env }), background: true, onBootstrap: () => { throw new Error('refused by the hook'); } });
          console.log('started');
        } catch (err) {
          console.log('failed: ' + err.message);
        }
      `;
      const result = await runChild(script, latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent' }));
      assert.match(result.output, /failed: refused by the hook/);
      assert.equal(result.code, 0, `the process exits on its own once the start failed:\n${result.output}`);
    } finally {
      await tdb.dispose();
    }
  });
});
