// The test run's temporary directory: the runner (run.ts) points TMPDIR at it, so whatever a
// test file, or a peer it starts, puts under os.tmpdir() is removed with it after the run,
// even what a test left behind or a killed worker never got to remove.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export const RUN_TMP_PREFIX = 'chgw-test-run-';

/**
 * Made with /tmp's modes (1777): the devices' sshd runs sessions as the password test user,
 * which must reach its device directory inside, as it did under /tmp.
 */
export function createRunTmp(): string {
  const dir = mkdtempSync(join(tmpdir(), RUN_TMP_PREFIX));
  chmodSync(dir, 0o1777);
  return dir;
}

/** Removes it, unless PEERS_KEEP_TMP=1 asks to keep the files for a look (then says where). */
export function removeRunTmp(dir: string): void {
  if (process.env.PEERS_KEEP_TMP) {
    console.error(`PEERS_KEEP_TMP: the run's temporary files are in ${dir}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/** True when this process runs under the runner: os.tmpdir() is a run's directory. */
export function inRunTmp(): boolean {
  return basename(tmpdir()).startsWith(RUN_TMP_PREFIX);
}
