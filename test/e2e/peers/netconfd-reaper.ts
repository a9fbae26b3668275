// The reaper of the shared netconfd: a detached process started next to it (netconfd.ts)
// that stops it once nobody needs it any more (lease.ts), then exits. It never stops a
// netconfd that a live lease holder, or a run of an older harness, may still use, nor one
// that an older harness started.
import { rmSync } from 'node:fs';
import { netconfdUsers } from './lease.js';
import { PID_FILE, managedPid, releaseReaperPid, runningNetconfd, stopPid, tryLock, unlock } from './netconfd.js';
import { sleep } from './util.js';

/** How long netconfd stays with no user before it is stopped: a run between two files. */
const IDLE_MS = Number(process.env.PEERS_NETCONFD_IDLE_MS ?? 3000);
const POLL_MS = 500;

async function reap(): Promise<void> {
  let idleSince: number | undefined;
  for (;;) {
    await sleep(POLL_MS);
    const running = runningNetconfd();
    // Stopped by hand, or restarted by an older harness: not ours to stop any more.
    if (!running || running.pid !== managedPid()) return;
    if (netconfdUsers().length > 0) {
      idleSince = undefined;
      continue;
    }
    idleSince ??= Date.now();
    if (Date.now() - idleSince < IDLE_MS || !tryLock()) continue;
    try {
      // Under the lock a new user has either left its lease already or waits for the lock.
      if (netconfdUsers().length === 0) {
        await stopPid(running.pid);
        rmSync(PID_FILE, { force: true });
        return;
      }
    } finally {
      unlock();
    }
  }
}

try {
  await reap();
} finally {
  releaseReaperPid(process.pid);
}
