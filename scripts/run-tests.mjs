#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's test runner (TypeScript through tsx). The timeout is a
// ceiling against hangs, per test and per file: files that start real `latchkey` processes take minutes on a busy machine.
// Narrow with file arguments: `npm test -- src/crypto`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(path, out) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return out;
  if (stat.isFile()) {
    if (path.endsWith('.test.ts')) out.push(path);
    return out;
  }
  for (const entry of readdirSync(path).sort()) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    collect(join(path, entry), out);
  }
  return out;
}

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['src', 'test'];
const files = roots.flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error(`No test files under ${roots.join(', ')}.`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
