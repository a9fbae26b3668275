// Runs one suite with ava: `node dist/test/harness/run.js unit|e2e|deploy|all [ava args]`.
// The package.json test scripts call it, so the suites are defined once (suites.ts).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { avaGlobs, type Suite } from './suites.js';

const suite = process.argv[2] as Suite | 'all' | undefined;
if (!suite || !['unit', 'e2e', 'deploy', 'all'].includes(suite)) {
  console.error('usage: node dist/test/harness/run.js unit|e2e|deploy|all [ava arguments]');
  process.exit(2);
}
// dist/test/harness/run.js -> the repository root (ava's package exports no cli path).
const avaCli = fileURLToPath(new URL('../../../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const ava = spawn(process.execPath, [avaCli, ...avaGlobs(suite), ...process.argv.slice(3)], { stdio: 'inherit' });
// Ctrl-C reaches ava through the terminal's process group; just wait for it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => ava.kill(sig));
ava.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
