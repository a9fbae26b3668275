// Scenario 2: small RPCs one at a time on one session, direct vs through the gateway, on the
// same device. Both sessions stay open; blocks of RPCs alternate between them.
import { NetconfManager } from '../lib/manager.js';
import { Rig } from '../lib/rig.js';
import { percentile, round } from '../lib/stats.js';

export interface LatencyOptions {
  count: number;
  block?: number;
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
}

export function percentiles(xs: number[]): Percentiles {
  return { p50: round(percentile(xs, 50), 3), p90: round(percentile(xs, 90), 3), p99: round(percentile(xs, 99), 3) };
}

const CIPHER = 'aes128-gcm@openssh.com' as const;
const SMALL_RPC = '<get-config><source><running/></source></get-config>';

export async function runLatency(o: LatencyOptions): Promise<LatencyResult> {
  const log = o.log ?? (() => undefined);
  const block = o.block ?? 250;
  const rig = await Rig.start([CIPHER], { cpuProfileDir: o.cpuProfileDir });
  const samples = { direct: [] as number[], gateway: [] as number[] };
  try {
    const sessions = {
      direct: await NetconfManager.open(rig.target('direct', CIPHER)),
      gateway: await NetconfManager.open(rig.target('gateway', CIPHER)),
    };
    // warm-up (JIT, TCP windows)
    for (const m of Object.values(sessions)) for (let i = 0; i < 50; i++) await m.rpc(i, SMALL_RPC);
    let id = 100;
    while (samples.direct.length < o.count || samples.gateway.length < o.count) {
      for (const path of ['direct', 'gateway'] as const) {
        const m = sessions[path];
        for (let i = 0; i < block && samples[path].length < o.count; i++) {
          const t0 = process.hrtime.bigint();
          const reply = await m.rpc(id++, SMALL_RPC);
          samples[path].push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (!reply.includes('<ok/>')) throw new Error(`${path}: unexpected reply ${reply.slice(0, 200)}`);
        }
      }
      log(`latency: ${samples.direct.length}/${o.count}`);
    }
    for (const m of Object.values(sessions)) await m.close();
  } finally {
    await rig.stop();
  }
  const direct = percentiles(samples.direct);
  const gateway = percentiles(samples.gateway);
  return {
    count: o.count,
    direct,
    gateway,
    added: { p50: round(gateway.p50 - direct.p50, 3), p90: round(gateway.p90 - direct.p90, 3), p99: round(gateway.p99 - direct.p99, 3) },
  };
}
