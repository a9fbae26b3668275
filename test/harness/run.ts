// Runs one suite with ava: `node dist/test/harness/run.js unit|e2e|deploy|all [ava args]`.
// The package.json test scripts call it, so the suites are defined once (suites.ts). After
// ava it checks that nothing the run started is left running (leftovers.ts): a leftover
// fails the run, and is stopped. Every temporary file of the run (the tests' own, and those
// of sshd, ncclient, kubectl… under TMPDIR) goes into one directory, removed after the run.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PEERS_STATE_DIR } from '../e2e/peers/constants.js';
import { leftovers, RUN_TAG_VAR } from './leftovers.js';
import { createRunTmp, removeRunTmp } from './run-tmp.js';
import { avaGlobs, type Suite } from './suites.js';

const suite = process.argv[2] as Suite | 'all' | undefined;
if (!suite || !['unit', 'e2e', 'deploy', 'all'].includes(suite)) {
  console.error('usage: node dist/test/harness/run.js unit|e2e|deploy|all [ava arguments]');
  process.exit(2);
}
// dist/test/harness/run.js -> the repository root (ava's package exports no cli path).
const avaCli = fileURLToPath(new URL('../../../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const tag = randomUUID();
const runTmp = createRunTmp();
const ava = spawn(process.execPath, [avaCli, ...avaGlobs(suite), ...process.argv.slice(3)], {
  stdio: 'inherit',
  // The shared netconfd's state stays where every run finds it (it outlives this one).
  env: { ...process.env, [RUN_TAG_VAR]: tag, TMPDIR: runTmp, PEERS_STATE_DIR },
});
// Ctrl-C reaches ava through the terminal's process group; other signals are passed on.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => ava.kill(sig));
const code = await new Promise<number>((resolve) => ava.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));

const left = await leftovers(tag);
if (left.length > 0) {
  console.error(`\nThe test run left ${left.length} process(es) running; stopping them:`);
  for (const p of left) {
    console.error(`  ${p.pid} ${p.command}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}
removeRunTmp(runTmp);
process.exit(code !== 0 ? code : left.length > 0 ? 1 : 0);
