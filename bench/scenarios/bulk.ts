// Scenario 1: one big NETCONF message each way (a reply of `size` bytes to a <get>, and an
// <edit-config> request of `size` bytes), on the three paths of rig.ts, per cipher. Variants
// alternate within every repetition (the order rotates) and medians are reported.
import { NetconfManager } from '../lib/manager.js';
import { CIPHERS, Rig, type Cipher, type PathName } from '../lib/rig.js';
import { median, round } from '../lib/stats.js';
import { machineBusyCpuSeconds } from '../lib/proc.js';

export interface BulkOptions {
  size: number;
  reps: number;
  ciphers?: readonly Cipher[];
  cpuProfileDir?: string;
  log?: (line: string) => void;
}

export interface BulkRow {
  cipher: Cipher;
  direction: 'reply' | 'request';
  /** MB/s (10^6 bytes per second) of every run, per path */
  runs: Record<PathName, number[]>;
  median: Record<PathName, number>;
  gatewayVsDirect: number;
  gatewayVsSshR: number;
  /** gateway process CPU seconds (user + system) per GiB carried, median over the gateway runs */
  gatewayCpuSecondsPerGiB: number;
  /** the same for the `ssh -R` hop: tunnel `ssh` client + jump host `sshd`, median over the ssh -R runs */
  tunnelCpuSecondsPerGiB: number;
  /** CPU per GiB of every run, per hop */
  cpuRuns: { gateway: number[]; sshR: number[] };
  /** busy CPU seconds of the whole machine per GiB carried, median per path: what the whole path costs (on a quiet machine) */
  pathCpuSecondsPerGiB: Record<PathName, number>;
  /** the same, every run */
  pathCpuRuns: Record<PathName, number[]>;
}

export interface BulkResult {
  sizeBytes: number;
  reps: number;
  rows: BulkRow[];
}

const PATHS: PathName[] = ['direct', 'gateway', 'sshR'];

export async function runBulk(o: BulkOptions): Promise<BulkResult> {
  const ciphers = o.ciphers ?? CIPHERS;
  const log = o.log ?? (() => undefined);
  const rig = await Rig.start(ciphers, { cpuProfileDir: o.cpuProfileDir });
  const rows: BulkRow[] = [];
  try {
    for (const cipher of ciphers) {
      for (const direction of ['reply', 'request'] as const) {
        const runs: Record<PathName, number[]> = { direct: [], gateway: [], sshR: [] };
        const cpuRuns = { gateway: [] as number[], sshR: [] as number[] };
        const pathCpuRuns: Record<PathName, number[]> = { direct: [], gateway: [], sshR: [] };
        for (let rep = 0; rep < o.reps; rep++) {
          const order = PATHS.map((_, i) => PATHS[(i + rep) % PATHS.length]!);
          for (const path of order) {
            const hopCpu = (): number => (path === 'gateway' ? rig.gateway.stats().cpuSeconds : path === 'sshR' ? rig.tunnelCpuSeconds() : 0);
            const cpu0 = hopCpu();
            const machine0 = machineBusyCpuSeconds();
            const mbps = await transfer(rig, path, cipher, direction, o.size);
            const cpuPerGiB = ((hopCpu() - cpu0) * 2 ** 30) / o.size;
            pathCpuRuns[path].push(round(((machineBusyCpuSeconds() - machine0) * 2 ** 30) / o.size, 2));
            if (path !== 'direct') cpuRuns[path].push(cpuPerGiB);
            runs[path].push(mbps);
            log(`bulk ${cipher} ${direction} ${path} rep ${rep + 1}/${o.reps}: ${mbps.toFixed(1)} MB/s` + (path === 'direct' ? '' : `, ${cpuPerGiB.toFixed(2)} CPU-s/GiB`));
          }
        }
        const med = { direct: median(runs.direct), gateway: median(runs.gateway), sshR: median(runs.sshR) };
        rows.push({
          cipher,
          direction,
          runs,
          median: { direct: round(med.direct, 1), gateway: round(med.gateway, 1), sshR: round(med.sshR, 1) },
          gatewayVsDirect: round(med.gateway / med.direct),
          gatewayVsSshR: round(med.gateway / med.sshR),
          gatewayCpuSecondsPerGiB: round(median(cpuRuns.gateway), 2),
          tunnelCpuSecondsPerGiB: round(median(cpuRuns.sshR), 2),
          cpuRuns: { gateway: cpuRuns.gateway.map((x) => round(x, 2)), sshR: cpuRuns.sshR.map((x) => round(x, 2)) },
          pathCpuSecondsPerGiB: { direct: round(median(pathCpuRuns.direct), 2), gateway: round(median(pathCpuRuns.gateway), 2), sshR: round(median(pathCpuRuns.sshR), 2) },
          pathCpuRuns,
        });
      }
    }
  } finally {
    await rig.stop();
  }
  return { sizeBytes: o.size, reps: o.reps, rows };
}

async function transfer(rig: Rig, path: PathName, cipher: Cipher, direction: 'reply' | 'request', size: number): Promise<number> {
  const m = await NetconfManager.open(rig.target(path, cipher));
  try {
    const t0 = process.hrtime.bigint();
    let reply: string;
    if (direction === 'reply') {
      reply = await m.rpc(1, `<get><filter type="subtree"><bulk xmlns="urn:bench" size="${size}"/></filter></get>`);
      if (m.received < size * 0.99) throw new Error(`${path}: reply of ${m.received} bytes, expected ${size}`);
    } else {
      reply = await m.bigRequest(1, size);
      if (!reply.includes('<ok/>')) throw new Error(`${path}: no <ok/> after the big request: ${reply.slice(0, 200)}`);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return size / seconds / 1e6;
  } finally {
    await m.close();
  }
}
