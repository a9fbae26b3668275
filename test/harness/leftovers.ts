// What a test run left running. The runner tags ava's environment with a run id; every
// process the suite starts inherits it (gateways, devices, sshd, netconfd, redis-server,
// prometheus, the netconfd reaper), so /proc/PID/environ tells ours from everybody else's.
import { readdirSync, readFileSync } from 'node:fs';
import { netconfdUsers } from '../e2e/peers/lease.js';
import { sleep } from '../e2e/peers/util.js';

export const RUN_TAG_VAR = 'CALLHOME_TEST_RUN';

export interface Leftover {
  pid: number;
  command: string;
}

/** Live processes (not zombies) whose environment carries `tag`. */
export function taggedProcesses(tag: string): Leftover[] {
  const needle = `${RUN_TAG_VAR}=${tag}`;
  const found: Leftover[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      found.push({ pid: Number(entry), command });
    } catch {
      /* exited, or not ours to read */
    }
  }
  return found;
}

/** The shared netconfd and its reaper stay while another run still uses them. */
const SHARED = /(^|\/)netconfd\s|netconfd-reaper\.js/;

/**
 * Waits up to `timeoutMs` for everything the run started to end (the netconfd reaper needs
 * a few seconds after the last user) and returns what is still running.
 */
export async function leftovers(tag: string, timeoutMs = 20_000): Promise<Leftover[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const shared = netconfdUsers().length > 0;
    const left = taggedProcesses(tag).filter((p) => !(shared && SHARED.test(p.command)));
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(250);
  }
}
