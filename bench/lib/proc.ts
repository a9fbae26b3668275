// CPU time of processes from /proc, so the gateway's cost and OpenSSH's cost for the same
// hop are read the same way (user + system, in seconds).
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100;

interface ProcStat {
  ppid: number;
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited
  }
  // the command name may contain spaces: fields are counted from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK };
}

/** user + system CPU seconds of one process so far (0 once it has exited). */
export function processCpuSeconds(pid: number): number {
  return readStat(pid)?.cpuSeconds ?? 0;
}

/**
 * user + system CPU seconds of process `pid` and all its live descendants: a daemon's
 * per-connection children (sshd's session processes call setsid(), so they leave the
 * daemon's process group but stay its descendants).
 */
export function processTreeCpuSeconds(pid: number): number {
  const all = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    const s = readStat(p);
    if (s) all.set(p, s);
  }
  const children = new Map<number, number[]>();
  for (const [p, s] of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
  let sum = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    sum += all.get(p)?.cpuSeconds ?? 0;
    todo.push(...(children.get(p) ?? []));
  }
  return sum;
}

/**
 * Busy CPU seconds of the whole machine so far (all cores: user, nice, system, irq, softirq,
 * steal from /proc/stat). Over one transfer on a quiet machine, that is the whole path's cost:
 * manager, device, every hop, and the kernel between them.
 */
export function machineBusyCpuSeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}
