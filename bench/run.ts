// `npm run bench`: every scenario of docs/BENCHMARKS.md, the gateway side by side with its
// baseline. Writes bench/results/results.json, bench/results/summary.md and
// docs/benchmarks.svg. --quick runs the CI smoke sizes.
import { GATEWAY_NODE_FLAGS } from '../src/heap.js';
import { benchHeapFlags } from './lib/gateway-process.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { sshNativeCryptoAvailable, sshPacketPathPatched } from '../src/gateway.js';
import { renderFigure } from './lib/figure.js';
import { GiB, MiB, round } from './lib/stats.js';
import { runBulk, type BulkResult } from './scenarios/bulk.js';
import { runCluster, type ClusterBenchResult } from './scenarios/cluster.js';
import { runConcurrency, type ConcurrencyResult } from './scenarios/concurrency.js';
import { runLatency, type LatencyResult } from './scenarios/latency.js';
import { runScale, type ScalePoint } from './scenarios/scale.js';

export const SCENARIOS = ['bulk', 'latency', 'scale', 'concurrency', 'cluster'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchSettings {
  scenarios: Scenario[];
  bulkSize: number;
  bulkReps: number;
  rpcs: number;
  scaleCounts: number[];
  scaleRate: number;
  scaleSamples: number;
  managers: number;
  concurrencyReply: number;
  /** cluster scenario: managers and seconds of each throughput run, replica counts */
  clusterManagers: number;
  clusterSeconds: number;
  clusterReplicas: number[];
  cpuProfileDir?: string;
}

export const FULL: Omit<BenchSettings, 'scenarios'> = {
  bulkSize: GiB,
  bulkReps: 3,
  rpcs: 5000,
  scaleCounts: [1000, 5000, 10000],
  scaleRate: 500,
  scaleSamples: 200,
  managers: 100,
  concurrencyReply: 10 * MiB,
  clusterManagers: 24,
  clusterSeconds: 10,
  clusterReplicas: [1, 2, 3],
};

export const QUICK: Omit<BenchSettings, 'scenarios'> = {
  bulkSize: 20 * MiB,
  bulkReps: 1,
  rpcs: 300,
  scaleCounts: [50],
  scaleRate: 200,
  scaleSamples: 20,
  managers: 10,
  concurrencyReply: 1 * MiB,
  clusterManagers: 4,
  clusterSeconds: 1,
  clusterReplicas: [1, 2],
};

export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  machine: { cpus: string; cores: number; memGiB: number; node: string };
  settings: BenchSettings;
  nativeCrypto: boolean;
  /** node's heap flags every gateway of the run was started with */
  gatewayHeapFlags: string[];
  bulk?: BulkResult;
  latency?: LatencyResult;
  scale?: ScalePoint[];
  concurrency?: ConcurrencyResult;
  cluster?: ClusterBenchResult;
}

export async function runBench(
  settings: BenchSettings,
  log: (line: string) => void = () => undefined,
  /** Called after each scenario, so a long run that fails late still leaves its figures. */
  onPartial: (r: BenchResults) => void = () => undefined,
): Promise<BenchResults> {
  // Without the binding ssh2 falls back to JavaScript crypto at about half the speed: such
  // figures would mislead, so refuse to produce them.
  const nativeCrypto = sshNativeCryptoAvailable();
  if (!nativeCrypto) throw new Error('ssh2 native crypto binding is NOT available: benchmark figures would be meaningless. Rebuild ssh2 (npm rebuild ssh2) with a C++ toolchain.');
  // Figures of an unpatched ssh2 would not be those of the gateway as installed by npm ci.
  if (!sshPacketPathPatched()) throw new Error('ssh2 is not patched (patches/ssh2+*.patch, applied by npm ci): run npm ci, or npx patch-package');
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    settings,
    nativeCrypto,
    gatewayHeapFlags: benchHeapFlags() ?? [...GATEWAY_NODE_FLAGS],
  };
  const has = (s: Scenario): boolean => settings.scenarios.includes(s);
  if (has('bulk')) {
    results.bulk = await runBulk({ size: settings.bulkSize, reps: settings.bulkReps, cpuProfileDir: settings.cpuProfileDir, log });
    onPartial(results);
  }
  if (has('latency')) {
    results.latency = await runLatency({ count: settings.rpcs, cpuProfileDir: settings.cpuProfileDir, log });
    onPartial(results);
  }
  if (has('scale')) {
    results.scale = await runScale({ counts: settings.scaleCounts, rate: settings.scaleRate, samples: settings.scaleSamples, log });
    onPartial(results);
  }
  if (has('concurrency')) {
    results.concurrency = await runConcurrency({ managers: settings.managers, replySize: settings.concurrencyReply, log });
    onPartial(results);
  }
  if (has('cluster')) {
    const dir = mkdtempSync(join(tmpdir(), 'chgw-bench-cluster-'));
    try {
      results.cluster = await runCluster(
        { rpcs: settings.rpcs, managers: settings.clusterManagers, seconds: settings.clusterSeconds, replicaCounts: settings.clusterReplicas, log },
        dir,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    onPartial(results);
  }
  results.finishedAt = new Date().toISOString();
  return results;
}

export function summaryMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  lines.push(
    `Run ${r.startedAt} – ${r.finishedAt ?? '?'}; ${r.machine.cores} × ${r.machine.cpus}, ${r.machine.memGiB} GiB, Node ${r.machine.node}; ssh2 native crypto: ${r.nativeCrypto ? 'yes' : 'NO'}; gateway heap flags: ${r.gatewayHeapFlags.join(' ') || "node's defaults"}`,
  );
  if (r.bulk) {
    lines.push('', `### Bulk throughput (${(r.bulk.sizeBytes / MiB).toFixed(0)} MiB message, median of ${r.bulk.reps}, MB/s)`, '');
    lines.push(
      '| cipher | direction | direct | gateway | ssh -R | gateway/direct | gateway/ssh-R | CPU-s per GiB: gateway | CPU-s per GiB: ssh -R hop | gateway/ssh-R CPU |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const b of r.bulk.rows) {
      const cpuRatio = b.tunnelCpuSecondsPerGiB ? round(b.gatewayCpuSecondsPerGiB / b.tunnelCpuSecondsPerGiB) : '–';
      lines.push(
        `| ${b.cipher} | ${b.direction === 'reply' ? 'reply (downstream)' : 'request (upstream)'} | ${b.median.direct} | ${b.median.gateway} | ${b.median.sshR} | ${b.gatewayVsDirect} | ${b.gatewayVsSshR} | ${b.gatewayCpuSecondsPerGiB ?? '–'} | ${b.tunnelCpuSecondsPerGiB ?? '–'} | ${cpuRatio} |`,
      );
    }
    lines.push(
      '',
      "CPU-s per GiB: user + system seconds from /proc per GiB carried — the gateway process, against the `ssh -R` tunnel's `ssh` client plus the jump host's `sshd`, which do the same work on their path (decrypt one SSH layer, encrypt another).",
      '',
      `Whole path, busy CPU-s of the machine (${r.machine.cores} cores) per GiB (/proc/stat; every process of the path and the kernel, so only meaningful on a quiet machine):`,
      '',
      '| cipher | direction | direct | gateway | ssh -R | gateway − direct | ssh -R − direct |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
      ...r.bulk.rows.map(
        (b) =>
          `| ${b.cipher} | ${b.direction} | ${b.pathCpuSecondsPerGiB.direct} | ${b.pathCpuSecondsPerGiB.gateway} | ${b.pathCpuSecondsPerGiB.sshR} | ${round(b.pathCpuSecondsPerGiB.gateway - b.pathCpuSecondsPerGiB.direct, 2)} | ${round(b.pathCpuSecondsPerGiB.sshR - b.pathCpuSecondsPerGiB.direct, 2)} |`,
      ),
    );
  }
  if (r.latency) {
    const l = r.latency;
    lines.push('', `### RPC latency (${l.count} small RPCs one at a time on one session, ms)`, '');
    lines.push('| | p50 | p90 | p99 |', '| --- | ---: | ---: | ---: |');
    lines.push(`| direct | ${l.direct.p50} | ${l.direct.p90} | ${l.direct.p99} |`);
    lines.push(`| gateway | ${l.gateway.p50} | ${l.gateway.p90} | ${l.gateway.p99} |`);
    lines.push(`| added | ${l.added.p50} | ${l.added.p90} | ${l.added.p99} |`);
    lines.push(
      '',
      `After start: the first ${l.cold.count} RPCs of the gateway process's first session (the measured sessions above come after two warm-up sessions of ${l.warmupRpcs} RPCs per path), ms:`,
      '',
    );
    lines.push('| | p50 | p90 | p99 |', '| --- | ---: | ---: | ---: |');
    lines.push(`| direct | ${l.cold.direct.p50} | ${l.cold.direct.p90} | ${l.cold.direct.p99} |`);
    lines.push(`| gateway | ${l.cold.gateway.p50} | ${l.cold.gateway.p90} | ${l.cold.gateway.p99} |`);
    lines.push(`| added | ${l.cold.added.p50} | ${l.cold.added.p90} | ${l.cold.added.p99} |`);
  }
  if (r.scale) {
    lines.push('', '### Scale (one gateway process, simulator in another)', '');
    lines.push(
      '| devices | RSS before → after (MiB) | RSS/device (KiB) | heap/device (KiB) | all connected (s) | handshakes/s | gateway CPU (s) | handshakes/CPU-s | RPC p50/p90/p99 (ms) | session setup p50 (ms) | /metrics scrape (ms) |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const p of r.scale) {
      lines.push(
        `| ${p.devices} | ${p.rssBeforeMiB} → ${p.rssAfterMiB} | ${p.rssPerDeviceKiB} | ${p.heapPerDeviceKiB} | ${p.allConnectedSeconds} | ${p.handshakesPerSecond} | ${p.gatewayCpuSeconds} | ${p.handshakesPerCpuSecond} | ${p.rpc.p50} / ${p.rpc.p90} / ${p.rpc.p99} | ${p.sessionSetupMedianMs} | ${p.metricsScrapeMedianMs} |`,
      );
    }
  }
  if (r.concurrency) {
    const c = r.concurrency;
    lines.push('', `### Concurrency (${c.managers} managers × ${(c.replyBytes / MiB).toFixed(0)} MiB replies from ${c.managers} devices)`, '');
    lines.push('| aggregate MB/s | slowest MB/s | fastest MB/s | slowest/fastest | wall (s) |', '| ---: | ---: | ---: | ---: | ---: |');
    lines.push(`| ${c.aggregateMBps} | ${c.slowestMBps} | ${c.fastestMBps} | ${c.fairness} | ${c.wallSeconds} |`);
  }
  if (r.cluster) {
    const c = r.cluster;
    const l = c.latency;
    lines.push('', `### Cluster: forwarded against local session (${l.count} small RPCs one at a time, two replicas, ms)`, '');
    lines.push('| | p50 | p90 | p99 | gateway CPU µs/RPC |', '| --- | ---: | ---: | ---: | ---: |');
    lines.push(`| local (manager on the owner) | ${l.local.p50} | ${l.local.p90} | ${l.local.p99} | ${l.cpuMicrosPerRpc.local} |`);
    lines.push(`| forwarded (manager on the other replica) | ${l.forwarded.p50} | ${l.forwarded.p90} | ${l.forwarded.p99} | ${l.cpuMicrosPerRpc.forwarded} |`);
    lines.push(`| added | ${l.added.p50} | ${l.added.p90} | ${l.added.p99} | ×${l.cpuMicrosPerRpc.ratio} |`);
    lines.push(
      '',
      `### Cluster: aggregate throughput (small RPCs back to back, ${c.throughput[0]?.managers ?? '?'} managers, ${c.cores} cores shared by everything; load average ${c.loadAverage.before} → ${c.loadAverage.after})`,
      '',
    );
    lines.push('| replicas | managers dial | forwarded share | RPC/s | vs 1 replica | gateway CPU ms/RPC |', '| ---: | --- | ---: | ---: | ---: | ---: |');
    for (const p of c.throughput)
      lines.push(
        `| ${p.replicas} | ${p.placement === 'owner' ? 'the owner' : 'round robin'} | ${p.forwardedShare} | ${p.rpcsPerSecond} | ${p.vsOneReplica} | ${p.gatewayCpuMsPerRpc} |`,
      );
  }
  return lines.join('\n') + '\n';
}

export function writeOutputs(r: BenchResults, dir: string, svgFile: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, 'summary.md'), summaryMarkdown(r));
  if (r.scale || r.latency) {
    mkdirSync(dirname(svgFile), { recursive: true });
    writeFileSync(svgFile, renderFigure(r.scale ?? [], r.latency));
  }
}

const USAGE = `Usage: npm run bench -- [--quick] [--only bulk,latency,scale,concurrency,cluster] [options]
  --quick               small sizes (the CI smoke run)
  --only LIST           run only these scenarios
  --bulk-size MIB       size of the bulk message in MiB (default 1024)
  --bulk-reps N         repetitions per variant (default 3)
  --rpcs N              RPCs per path in the latency run (default 5000)
  --scale LIST          device counts (default 1000,5000,10000)
  --scale-rate R        simulator connection rate (default 500/s)
  --managers N          managers in the concurrency run (default 100)
  --cluster-managers N  managers in the cluster throughput runs (default 24)
  --cluster-seconds S   length of each cluster throughput run (default 10)
  --cpu-prof DIR        run the bulk and latency scenarios' gateway under node --cpu-prof, profiles in DIR
  --heap-flags FLAGS    start every gateway with these node heap flags instead of the production ones
                        (src/heap.ts), for a comparison run; "" is node's defaults
  --out DIR             results directory (default bench/results)
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      'bulk-size': { type: 'string' },
      'bulk-reps': { type: 'string' },
      rpcs: { type: 'string' },
      scale: { type: 'string' },
      'scale-rate': { type: 'string' },
      managers: { type: 'string' },
      'cluster-managers': { type: 'string' },
      'cluster-seconds': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'heap-flags': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values['heap-flags'] !== undefined) process.env.BENCH_GATEWAY_HEAP_FLAGS = values['heap-flags'];
  const base = values.quick ? QUICK : FULL;
  const settings: BenchSettings = {
    ...base,
    scenarios: values.only ? (values.only.split(',') as Scenario[]) : [...SCENARIOS],
    ...(values['bulk-size'] ? { bulkSize: Number(values['bulk-size']) * MiB } : {}),
    ...(values['bulk-reps'] ? { bulkReps: Number(values['bulk-reps']) } : {}),
    ...(values.rpcs ? { rpcs: Number(values.rpcs) } : {}),
    ...(values.scale ? { scaleCounts: values.scale.split(',').map(Number) } : {}),
    ...(values['scale-rate'] ? { scaleRate: Number(values['scale-rate']) } : {}),
    ...(values.managers ? { managers: Number(values.managers) } : {}),
    ...(values['cluster-managers'] ? { clusterManagers: Number(values['cluster-managers']) } : {}),
    ...(values['cluster-seconds'] ? { clusterSeconds: Number(values['cluster-seconds']) } : {}),
    ...(values['cpu-prof'] ? { cpuProfileDir: values['cpu-prof'] } : {}),
  };
  for (const s of settings.scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}" (${SCENARIOS.join(', ')})`);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const out = values.out ?? join(root, 'bench', 'results');
  const log = (line: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const results = await runBench(settings, log, (partial) => writeOutputs(partial, out, join(root, 'docs', 'benchmarks.svg')));
  writeOutputs(results, out, join(root, 'docs', 'benchmarks.svg'));
  process.stdout.write(summaryMarkdown(results));
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
