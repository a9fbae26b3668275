// Scenario 2: small RPCs one at a time on one session, direct vs through the gateway, on the
// same device. Both sessions stay open; blocks of RPCs alternate between them.
//
// The gateway is a fresh process, and its first few thousand RPCs cost it twice the CPU of
// later ones (V8 tiering its hot paths up, and again for the first sessions after start), which
// puts a 3-4 ms tail on them. That start-up is measured on its own (`cold`: the first RPCs of
// the first session on each path); the figures against the targets are those of a gateway that
// has served sessions before (two warm-up sessions per path), as a running gateway has.
import { NetconfManager, warmUpSessions } from '../lib/manager.js';
import { Rig, type PathName } from '../lib/rig.js';
import { percentile, round } from '../lib/stats.js';

export interface LatencyOptions {
  count: number;
  block?: number;
  /** RPCs measured at the start of the first session on each path (default: min(1000, count)). */
  coldCount?: number;
  /** RPCs on each of the two warm-up sessions per path (default: min(2000, count)). */
  warmupRpcs?: number;
  cpuProfileDir?: string;
  log?: (line: string) => void;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface LatencyResult {
  count: number;
  /** milliseconds */
  direct: Percentiles;
  gateway: Percentiles;
  added: Percentiles;
  /** RPCs on each warm-up session (two per path) before the measured ones */
  warmupRpcs: number;
  /** the first RPCs of the first session on each path, the gateway process just started */
  cold: { count: number; direct: Percentiles; gateway: Percentiles; added: Percentiles };
}

export function percentiles(xs: number[]): Percentiles {
  return { p50: round(percentile(xs, 50), 3), p90: round(percentile(xs, 90), 3), p99: round(percentile(xs, 99), 3) };
}

const CIPHER = 'aes128-gcm@openssh.com' as const;
const SMALL_RPC = '<get-config><source><running/></source></get-config>';

const PATHS = ['direct', 'gateway'] as const satisfies readonly PathName[];

function addedOf(direct: Percentiles, gateway: Percentiles): Percentiles {
  return { p50: round(gateway.p50 - direct.p50, 3), p90: round(gateway.p90 - direct.p90, 3), p99: round(gateway.p99 - direct.p99, 3) };
}

/** Times `n` RPCs on `m` (ms each), starting at message-id `firstId`. */
async function timeRpcs(m: NetconfManager, path: PathName, n: number, firstId: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const reply = await m.rpc(firstId + i, SMALL_RPC);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!reply.includes('<ok/>')) throw new Error(`${path}: unexpected reply ${reply.slice(0, 200)}`);
  }
  return samples;
}

export async function runLatency(o: LatencyOptions): Promise<LatencyResult> {
  const log = o.log ?? (() => undefined);
  const block = o.block ?? 250;
  const coldCount = o.coldCount ?? Math.min(1000, o.count);
  const warmupRpcs = o.warmupRpcs ?? Math.min(2000, o.count);
  const rig = await Rig.start([CIPHER], { cpuProfileDir: o.cpuProfileDir });
  const samples = { direct: [] as number[], gateway: [] as number[] };
  const cold = { direct: [] as number[], gateway: [] as number[] };
  try {
    // The fresh gateway's first RPCs, then two warm-up sessions per path (the first carries on
    // from the cold RPCs): the sessions after start are the slow ones, not only the RPCs.
    for (const path of PATHS) {
      const first = await NetconfManager.open(rig.target(path, CIPHER));
      cold[path] = await timeRpcs(first, path, coldCount, 1);
      await timeRpcs(first, path, warmupRpcs, 1 + coldCount);
      await first.close();
      await warmUpSessions(() => NetconfManager.open(rig.target(path, CIPHER)), warmupRpcs, SMALL_RPC, 1);
    }
    log(`latency: cold and warm-up done (${coldCount} + 2 × ${warmupRpcs} RPCs per path)`);
    const sessions = {
      direct: await NetconfManager.open(rig.target('direct', CIPHER)),
      gateway: await NetconfManager.open(rig.target('gateway', CIPHER)),
    };
    // the new sessions' own start (TCP windows, the device's subsystem process)
    for (const m of Object.values(sessions)) for (let i = 0; i < 50; i++) await m.rpc(i, SMALL_RPC);
    let id = 100;
    while (samples.direct.length < o.count || samples.gateway.length < o.count) {
      for (const path of PATHS) {
        const n = Math.min(block, o.count - samples[path].length);
        samples[path].push(...(await timeRpcs(sessions[path], path, n, id)));
        id += n;
      }
      log(`latency: ${samples.direct.length}/${o.count}`);
    }
    for (const m of Object.values(sessions)) await m.close();
  } finally {
    await rig.stop();
  }
  const direct = percentiles(samples.direct);
  const gateway = percentiles(samples.gateway);
  const coldDirect = percentiles(cold.direct);
  const coldGateway = percentiles(cold.gateway);
  return {
    count: o.count,
    direct,
    gateway,
    added: addedOf(direct, gateway),
    warmupRpcs,
    cold: { count: coldCount, direct: coldDirect, gateway: coldGateway, added: addedOf(coldDirect, coldGateway) },
  };
}
