// Scenario 5: cluster mode. Gateway processes on their own loopback addresses with one
// redis-server (test/helpers/cluster.ts), simulated devices (`callhome-gateway simulate`)
// and OpenSSH managers.
// - Forwarding cost: small RPCs one at a time on two sessions to the same device, one on the
//   replica holding it (local) and one on another replica (forwarded over peer TLS); blocks
//   alternate. Latency percentiles, and gateway CPU per RPC (the owner's alone for local,
//   both replicas' for forwarded), from /proc.
// - Aggregate throughput: M managers each sending small RPCs back to back for a fixed time,
//   against 1, 2 and 3 replicas; devices spread evenly over the replicas. "owner": every
//   manager dials the replica holding its device; "spread": managers spread round robin, as
//   an L4 balancer does, so (N-1)/N of the sessions are forwarded.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../test/e2e/peers/util.js';
import { TestCluster, type Replica } from '../../test/helpers/cluster.js';
import { NetconfManager, warmUpSessions } from '../lib/manager.js';
import { processCpuSeconds } from '../lib/proc.js';
import { SimulatorProcess, writeSimulatorInventory } from '../lib/simulator-process.js';
import { round } from '../lib/stats.js';
import { percentiles, type Percentiles } from './latency.js';

export interface ClusterBenchOptions {
  /** RPCs per path in the latency part */
  rpcs: number;
  /** managers in the throughput part */
  managers: number;
  /** seconds each throughput run lasts */
  seconds: number;
  replicaCounts?: number[];
  log?: (line: string) => void;
}

export interface ThroughputPoint {
  replicas: number;
  placement: 'owner' | 'spread';
  managers: number;
  rpcs: number;
  rpcsPerSecond: number;
  /** rpcsPerSecond / that of one replica */
  vsOneReplica: number;
  /** user + system seconds of all gateway processes per 1000 RPCs */
  gatewayCpuMsPerRpc: number;
  forwardedShare: number;
}

export interface ClusterBenchResult {
  cores: number;
  /** 1-minute load average when the scenario started and ended: other work on the machine skews every figure */
  loadAverage: { before: number; after: number };
  latency: {
    count: number;
    local: Percentiles;
    forwarded: Percentiles;
    added: Percentiles;
    /** gateway CPU microseconds per RPC */
    cpuMicrosPerRpc: { local: number; forwarded: number; ratio: number };
  };
  throughput: ThroughputPoint[];
}

const CIPHER = 'aes128-gcm@openssh.com';
const SMALL_RPC = '<get-config><source><running/></source></get-config>';
// The admission limits guard against strangers; the benchmark lifts them (as GatewayProcess does).
const ENV = {
  CHGW_LOG_LEVEL: 'info',
  CHGW_NORTHBOUND_MAXSESSIONSPERUSER: '100000',
  CHGW_NORTHBOUND_MAXSESSIONSPERDEVICE: '100000',
  CHGW_LIMITS_MAXDEVICES: '100000',
};

interface Rig {
  cluster: TestCluster;
  sims: SimulatorProcess[];
  /** device ids, grouped by the replica they call */
  devices: { id: string; replica: Replica }[];
  identityFile: string;
}

/** A cluster of `replicas` with `perReplica` simulated devices calling each replica. */
async function startRig(replicas: number, perReplica: number, dir: string): Promise<Rig> {
  const key = await generateKeyPair(join(dir, `id_${replicas}_${perReplica}`), 'bench-manager');
  let inventory = 'devices:\n';
  const sims = Array.from({ length: replicas }, (_, i) => ({ count: perReplica, seed: `bench-cluster-${i}`, rate: 200 }));
  const ids: string[][] = [];
  for (const [i, sim] of sims.entries()) {
    const file = join(dir, `sim-${i}.yaml`);
    writeSimulatorInventory(sim, file);
    // Each simulator numbers its devices from sim-00001: prefix the ids with the replica.
    const text = readFileSync(file, 'utf8').replace(/id: sim-/g, `id: r${i + 1}-sim-`);
    ids.push([...text.matchAll(/id: (\S+)/g)].map((m) => m[1]!));
    inventory += text.slice(text.indexOf('devices:\n') + 'devices:\n'.length);
  }
  writeFileSync(join(dir, 'inventory.yaml'), inventory);
  const cluster = await TestCluster.start({
    replicas,
    inventory,
    users: `users:\n  - name: bench\n    authorizedKeys: ["${key.publicKeyLine}"]\n    devices: ["*"]\n`,
    leaseTtl: 15,
    env: ENV,
  });
  const running = sims.map((sim, i) => SimulatorProcess.start(sim, cluster.ports.callhome, cluster.replicas[i]!.host));
  try {
    await Promise.all(running.map((s) => s.allConnected));
    for (const list of ids) for (const id of list) await cluster.waitForOwner(id, { timeoutMs: 30_000 });
  } catch (err) {
    await Promise.all(running.map((s) => s.stop()));
    await cluster.stop();
    throw err;
  }
  return {
    cluster,
    sims: running,
    devices: ids.flatMap((list, i) => list.map((id) => ({ id, replica: cluster.replicas[i]! }))),
    identityFile: key.privateKeyFile,
  };
}

async function stopRig(rig: Rig): Promise<void> {
  await Promise.all(rig.sims.map((s) => s.stop()));
  await rig.cluster.stop();
}

const open = (rig: Rig, replica: Replica, device: string) =>
  NetconfManager.open({ host: replica.host, port: rig.cluster.ports.northbound, user: `bench@${device}`, identityFile: rig.identityFile, cipher: CIPHER });

const cpuOf = (rs: Replica[]) => rs.reduce((s, r) => s + processCpuSeconds(r.pid), 0);

/** On a rig of two or more replicas: a device held by r1, one session on r1 and one on r2. */
async function forwardingCost(rig: Rig, count: number, log: (l: string) => void): Promise<ClusterBenchResult['latency']> {
  const [r1, r2] = rig.cluster.replicas as [Replica, Replica];
  const device = rig.devices[0]!.id;
  const samples = { local: [] as number[], forwarded: [] as number[] };
  const cpu = { local: 0, forwarded: 0 };
  // Both replicas warmed up on both paths first, as running replicas are (latency.ts: a fresh
  // process's first sessions are the slow ones), then one session per path, blocks alternating.
  for (const replica of [r1, r2]) await warmUpSessions(() => open(rig, replica, device), Math.min(2000, count), SMALL_RPC);
  const sessions = { local: await open(rig, r1, device), forwarded: await open(rig, r2, device) };
  try {
    for (const m of Object.values(sessions)) for (let i = 0; i < 50; i++) await m.rpc(i, SMALL_RPC);
    let id = 100;
    const block = 250;
    while (samples.local.length < count || samples.forwarded.length < count) {
      for (const path of ['local', 'forwarded'] as const) {
        const m = sessions[path];
        const before = cpuOf([r1, r2]);
        for (let i = 0; i < block && samples[path].length < count; i++) {
          const t0 = process.hrtime.bigint();
          const reply = await m.rpc(id++, SMALL_RPC);
          samples[path].push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (!reply.includes('<data')) throw new Error(`${path}: unexpected reply ${reply.slice(0, 200)}`);
        }
        cpu[path] += cpuOf([r1, r2]) - before;
      }
      log(`cluster latency: ${samples.local.length}/${count}`);
    }
  } finally {
    for (const m of Object.values(sessions)) await m.close();
  }
  const local = percentiles(samples.local);
  const forwarded = percentiles(samples.forwarded);
  const micros = { local: round((cpu.local / samples.local.length) * 1e6, 1), forwarded: round((cpu.forwarded / samples.forwarded.length) * 1e6, 1) };
  return {
    count,
    local,
    forwarded,
    added: { p50: round(forwarded.p50 - local.p50, 3), p90: round(forwarded.p90 - local.p90, 3), p99: round(forwarded.p99 - local.p99, 3) },
    cpuMicrosPerRpc: { ...micros, ratio: round(micros.forwarded / micros.local, 2) },
  };
}

async function throughput(rig: Rig, managers: number, seconds: number, log: (l: string) => void): Promise<Omit<ThroughputPoint, 'vsOneReplica'>[]> {
  const replicas = rig.cluster.replicas.length;
  const points: Omit<ThroughputPoint, 'vsOneReplica'>[] = [];
  for (const placement of replicas === 1 ? (['owner'] as const) : (['owner', 'spread'] as const)) {
    const plan = rig.devices
      .slice(0, managers)
      .map((d, j) => ({ device: d.id, replica: placement === 'owner' ? d.replica : rig.cluster.replicas[j % replicas]!, owner: d.replica }));
    const sessions = await Promise.all(plan.map((p) => open(rig, p.replica, p.device)));
    try {
      for (const m of sessions) for (let i = 0; i < 20; i++) await m.rpc(i, SMALL_RPC);
      const cpuBefore = cpuOf(rig.cluster.replicas);
      const t0 = performance.now();
      const deadline = t0 + seconds * 1000;
      const counts = await Promise.all(
        sessions.map(async (m) => {
          let n = 0;
          while (performance.now() < deadline) {
            await m.rpc(1000 + n, SMALL_RPC);
            n++;
          }
          return n;
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuOf(rig.cluster.replicas) - cpuBefore;
      const total = counts.reduce((s, n) => s + n, 0);
      const point = {
        replicas,
        placement,
        managers,
        rpcs: total,
        rpcsPerSecond: round(total / wall, 0),
        gatewayCpuMsPerRpc: round((cpu / total) * 1000, 3),
        forwardedShare: round(plan.filter((p) => p.replica !== p.owner).length / plan.length, 2),
      };
      log(`cluster throughput: ${JSON.stringify(point)}`);
      points.push(point);
    } finally {
      await Promise.all(sessions.map((m) => m.close()));
    }
  }
  return points;
}

export async function runCluster(o: ClusterBenchOptions, dir: string): Promise<ClusterBenchResult> {
  const log = o.log ?? (() => undefined);
  const counts = o.replicaCounts ?? [1, 2, 3];
  if (!counts.some((n) => n >= 2)) throw new Error('the cluster scenario needs a replica count of 2 or more');
  const loadBefore = loadavg()[0]!;
  let latency: ClusterBenchResult['latency'] | undefined;
  const raw: Omit<ThroughputPoint, 'vsOneReplica'>[] = [];
  for (const n of counts) {
    const rig = await startRig(n, Math.ceil(o.managers / n), dir);
    try {
      // The forwarding cost is measured on the first rig with two replicas or more.
      if (n >= 2 && !latency) latency = await forwardingCost(rig, o.rpcs, log);
      raw.push(...(await throughput(rig, o.managers, o.seconds, log)));
    } finally {
      await stopRig(rig);
    }
  }
  const one = raw.find((p) => p.replicas === 1)?.rpcsPerSecond ?? NaN;
  return {
    cores: cpus().length,
    loadAverage: { before: round(loadBefore, 1), after: round(loadavg()[0]!, 1) },
    latency: latency!,
    throughput: raw.map((p) => ({ ...p, vsOneReplica: round(p.rpcsPerSecond / one, 2) })),
  };
}
