// Who still needs the shared netconfd. Every process that calls ensureNetconfd() leaves a
// lease file naming the process whose life the need follows: the ava run (when called from an
// ava worker, whose parent it is) or the calling process itself (a bench run, a script).
// A lease is live while that process (same pid, same start time) lives. Runs of a harness
// older than the leases (ava or bench processes without one) count as users too.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PEERS_STATE_DIR } from './constants.js';

export const LEASES_DIR = join(PEERS_STATE_DIR, 'netconfd.leases');

/** Field 22 of /proc/PID/stat (start time in clock ticks): tells a pid from a later reuse. */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** An ava run's main process (started as `ava`, `npx ava` or through its cli entry point). */
const AVA_MAIN = /(^|\/)(\.bin\/ava|ava\/entrypoints\/cli\.mjs)$/;
/** A benchmark run (bench/run.ts), which drives netconfd devices outside ava. */
const BENCH_MAIN = /(^|\/)dist\/bench\/run\.js$/;

/** The process a lease taken now follows: the ava run when this is one of its workers. */
export function leaseHolder(): number {
  return cmdline(process.ppid).some((a) => AVA_MAIN.test(a)) ? process.ppid : process.pid;
}

let taken: string | undefined;

/** Leaves (once per process) a lease for leaseHolder(). */
export function takeLease(): void {
  const pid = leaseHolder();
  const name = `${pid}-${startTime(pid) ?? '0'}`;
  if (taken === name) return;
  mkdirSync(LEASES_DIR, { recursive: true });
  writeFileSync(join(LEASES_DIR, name), String(process.pid));
  taken = name;
}

/** Holders of live leases; removes the leases of processes that are gone. */
export function liveLeases(): number[] {
  let names: string[];
  try {
    names = readdirSync(LEASES_DIR);
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const name of names) {
    const [pid, start] = name.split('-');
    if (pid && startTime(Number(pid)) === start) live.push(Number(pid));
    else rmSync(join(LEASES_DIR, name), { force: true });
  }
  return live;
}

/**
 * Could run `pid` use our netconfd without taking a lease? Only a harness from before the
 * leases (its checkout has no lease.ts) that shares our state dir.
 */
function olderHarnessSharingOurs(pid: number): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const dir = env.find((e) => e.startsWith('PEERS_STATE_DIR='))?.slice('PEERS_STATE_DIR='.length);
    if ((dir || undefined) !== (process.env.PEERS_STATE_DIR || undefined)) return false;
    return !existsSync(join(readlinkSync(`/proc/${pid}/cwd`), 'test', 'e2e', 'peers', 'lease.ts'));
  } catch {
    return true; // cannot tell: assume it may
  }
}

/** ava and bench runs of this user that took no lease (a harness from before the leases). */
function runsWithoutLease(leased: number[]): number[] {
  const uid = process.getuid?.();
  const runs: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || leased.includes(pid)) continue;
    const args = cmdline(pid);
    if (!args.some((a) => AVA_MAIN.test(a) || BENCH_MAIN.test(a))) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (uid !== undefined && Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid) continue;
    } catch {
      continue;
    }
    if (olderHarnessSharingOurs(pid)) runs.push(pid);
  }
  return runs;
}

/** Processes that may still use the shared netconfd; empty when it may be stopped. */
export function netconfdUsers(): number[] {
  const leased = liveLeases();
  return [...leased, ...runsWithoutLease(leased)];
}
