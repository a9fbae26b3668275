// The runner's temporary directory (run-tmp.ts): every test file of a run writes its
// temporary files inside it, the shared netconfd's state stays outside, and it goes away
// after the run.
import test from 'ava';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PEERS_STATE_DIR } from '../e2e/peers/constants.js';
import { RUN_TAG_VAR } from './leftovers.js';
import { createRunTmp, inRunTmp, removeRunTmp } from './run-tmp.js';

test("under the runner, os.tmpdir() is the run's own directory and the shared netconfd state is outside it", (t) => {
  if (!process.env[RUN_TAG_VAR]) {
    t.log('not started by test/harness/run.ts (npm test): nothing to check');
    t.pass();
    return;
  }
  t.true(inRunTmp(), `os.tmpdir() is ${tmpdir()}`);
  t.is(statSync(tmpdir()).mode & 0o7777, 0o1777, 'the modes of /tmp: other users (the device test user) reach their files inside');
  t.true(relative(tmpdir(), PEERS_STATE_DIR).startsWith('..'), `netconfd state ${PEERS_STATE_DIR} must outlive the run`);
});

test.serial('removeRunTmp removes the directory with everything in it; PEERS_KEEP_TMP=1 keeps it', (t) => {
  const keep = process.env.PEERS_KEEP_TMP;
  t.teardown(() => {
    if (keep === undefined) delete process.env.PEERS_KEEP_TMP;
    else process.env.PEERS_KEEP_TMP = keep;
  });
  const fill = (dir: string): void => {
    mkdirSync(join(dir, 'chgw-peer-x', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'chgw-peer-x', 'deep', 'sshd_config'), 'Port 22\n');
  };
  delete process.env.PEERS_KEEP_TMP;
  const dir = createRunTmp();
  fill(dir);
  removeRunTmp(dir);
  t.false(existsSync(dir));

  process.env.PEERS_KEEP_TMP = '1';
  const kept = createRunTmp();
  fill(kept);
  removeRunTmp(kept);
  t.true(existsSync(join(kept, 'chgw-peer-x', 'deep', 'sshd_config')));
  delete process.env.PEERS_KEEP_TMP;
  removeRunTmp(kept);
  t.false(existsSync(kept));
});
