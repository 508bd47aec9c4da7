#!/usr/bin/env node
// `npm run lint:openapi`: dumps the served /openapi.json (scripts/openapi-dump.ts, an app built in
// process) and lints it with Redocly's recommended rules (redocly.yaml). Redocly exits 0 on
// warnings; here any problem, warning or error, fails the run. Run through npm, which puts
// node_modules/.bin (tsx, redocly) on the PATH.
import { spawnSync } from 'node:child_process';

const OUT = '.openapi/openapi.json';
const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };

const dump = spawnSync('tsx', ['scripts/openapi-dump.ts', OUT], { stdio: 'inherit', env });
if (dump.status !== 0) process.exit(dump.status ?? 1);

const lint = spawnSync('redocly', ['lint', '--config', 'redocly.yaml', '--format', 'json', OUT], { env, encoding: 'utf8' });
if (lint.error) {
  console.error(`redocly could not be run (${lint.error.message}); run \`npm install\` first.`);
  process.exit(1);
}
let report;
try {
  report = JSON.parse(lint.stdout.slice(lint.stdout.indexOf('{')));
} catch {
  process.stderr.write(lint.stdout + lint.stderr);
  console.error('redocly lint did not answer a JSON report.');
  process.exit(1);
}
for (const problem of report.problems) {
  const where = problem.location?.[0]?.pointer ?? '';
  console.error(`${problem.severity} ${problem.ruleId} ${where}: ${problem.message}`);
}
const { errors, warnings } = report.totals;
if (errors + warnings > 0) {
  console.error(`The OpenAPI description has ${errors} errors and ${warnings} warnings (redocly ${report.version}, recommended rules).`);
  process.exit(1);
}
console.log(`The OpenAPI description passes redocly ${report.version} lint (recommended rules): no errors, no warnings.`);
