// Files the gateway keeps in stateDir (approvals, assigned device ports) are replaced
// atomically and durably: written to a temporary file, fsynced, renamed over the old one, and
// the directory fsynced, so a power cut leaves either the old or the new file, never half of
// one and never a lost rename. A crash between write and rename leaves a `*.tmp` file, which
// the next start removes.
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

const TEMP_SUFFIX = '.tmp';

/** Replaces `file` with `text` (mode 0600), durably. */
export function writeDurably(file: string, text: string, mode = 0o600): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}${TEMP_SUFFIX}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    fchmodSync(fd, mode); // a leftover temporary file keeps its old mode otherwise
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The rename lives in the directory: without this fsync it may not survive a power cut.
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Removes temporary files a crash left beside the state files named (`NAME.<pid>.tmp`).
 * Returns the paths removed.
 */
export function removeStaleTempFiles(stateDir: string, names: readonly string[]): string[] {
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch {
    return []; // no stateDir yet: nothing was left
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const m = /^(.+)\.(\d+)\.tmp$/.exec(entry);
    if (!m || !names.includes(m[1]!) || Number(m[2]) === process.pid) continue;
    const file = path.join(stateDir, entry);
    rmSync(file, { force: true });
    removed.push(file);
  }
  return removed;
}
