// Scenario 3: N simulated devices (a separate simulator process) held by one gateway process.
// Memory per device (RSS and V8 heap, after minus before), time until all are connected,
// gateway CPU per handshake, RPC latency to random devices while all are connected, and the
// time to scrape /metrics.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import { NetconfClient } from '../../test/simulator/helpers.js';
import { sleep } from '../../test/helpers/wait.js';
import { GatewayProcess } from '../lib/gateway-process.js';
import { SimulatorProcess, writeSimulatorInventory } from '../lib/simulator-process.js';
import { median, round } from '../lib/stats.js';
import { percentiles, type Percentiles } from './latency.js';

export interface ScaleOptions {
  counts: number[];
  rate: number;
  samples: number;
  settleMs?: number;
  log?: (line: string) => void;
}

export interface ScalePoint {
  devices: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerDeviceKiB: number;
  heapPerDeviceKiB: number;
  allConnectedSeconds: number;
  handshakesPerSecond: number;
  gatewayCpuSeconds: number;
  handshakesPerCpuSecond: number;
  /** ms, one small RPC on an open session to a random device */
  rpc: Percentiles;
  /** ms, SSH login to the gateway + channel + hello exchange to a random device */
  sessionSetupMedianMs: number;
  metricsScrapeMedianMs: number;
  simulatorSummary: string;
}

const PASSWORD = 'bench-pw';

export async function runScale(o: ScaleOptions): Promise<ScalePoint[]> {
  const out: ScalePoint[] = [];
  for (const n of o.counts) out.push(await scalePoint(n, o));
  return out;
}

async function scalePoint(n: number, o: ScaleOptions): Promise<ScalePoint> {
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'chgw-bench-scale-'));
  const sim = { count: n, seed: `bench-${n}`, rate: o.rate };
  const invFile = join(dir, 'devices.yaml');
  writeSimulatorInventory(sim, invFile);
  const gw = await GatewayProcess.start({
    inventory: readFileSync(invFile, 'utf8'),
    users: `users:\n  - name: bench\n    password: ${PASSWORD}\n    devices: ["*"]\n`,
  });
  try {
    gw.assertNativeCrypto();
    gw.assertHeapSettings();
  } catch (e) {
    await gw.stop();
    throw e;
  }
  let simulator: SimulatorProcess | undefined;
  try {
    await sleep(1000);
    const heapBefore = await gw.metric('nodejs_heap_size_used_bytes');
    const before = gw.stats();
    const t0 = Date.now();
    simulator = SimulatorProcess.start(sim, gw.callhomePort);
    // the gateway's own count decides; the simulator's summary line is kept for the record
    const allAt = await gw.waitForConnected(n, 120_000 + (n / o.rate) * 1000 * 3);
    const allConnectedSeconds = (allAt - t0) / 1000;
    const summary = await Promise.race([simulator.allConnected, sleep(3000).then(() => '(no summary line)')]);
    const cpu = gw.stats().cpuSeconds - before.cpuSeconds;
    log(`scale ${n}: ${summary}; gateway CPU ${cpu.toFixed(1)} s`);
    await sleep(o.settleMs ?? 5000);
    const after = gw.stats();
    const scrapes: number[] = [];
    let heapAfter = NaN;
    for (let i = 0; i < 5; i++) {
      const s0 = performance.now();
      const text = await gw.metricsText();
      scrapes.push(performance.now() - s0);
      const connected = Number(/^callhome_devices_connected\{transport="ssh"\} ([0-9.]+)$/m.exec(text)?.[1]);
      if (connected !== n) throw new Error(`${connected} devices connected, expected ${n}`);
      heapAfter = Number(/^nodejs_heap_size_used_bytes ([0-9.e+]+)$/m.exec(text)?.[1]);
    }
    const { rpc, setup } = await randomDeviceLatency(gw, n, o.samples);
    log(`scale ${n}: rss ${((after.rssBytes - before.rssBytes) / n / 1024).toFixed(1)} KiB/device, rpc p50 ${rpc.p50} ms`);
    return {
      devices: n,
      rssBeforeMiB: round(before.rssBytes / 2 ** 20, 1),
      rssAfterMiB: round(after.rssBytes / 2 ** 20, 1),
      rssPerDeviceKiB: round((after.rssBytes - before.rssBytes) / n / 1024, 1),
      heapPerDeviceKiB: round((heapAfter - heapBefore) / n / 1024, 1),
      allConnectedSeconds: round(allConnectedSeconds, 2),
      handshakesPerSecond: round(n / allConnectedSeconds, 0),
      gatewayCpuSeconds: round(cpu, 2),
      handshakesPerCpuSecond: round(n / cpu, 0),
      rpc,
      sessionSetupMedianMs: round(median(setup), 2),
      metricsScrapeMedianMs: round(median(scrapes), 2),
      simulatorSummary: summary,
    };
  } finally {
    await simulator?.stop();
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function randomDeviceLatency(gw: GatewayProcess, n: number, samples: number): Promise<{ rpc: Percentiles; setup: number[] }> {
  const rpc: number[] = [];
  const setup: number[] = [];
  for (let i = 0; i < samples; i++) {
    const id = `sim-${String(1 + Math.floor(Math.random() * n)).padStart(5, '0')}`;
    const s0 = performance.now();
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve).once('error', reject);
      client.connect({ host: '127.0.0.1', port: gw.northboundPort, username: `bench@${id}`, password: PASSWORD, readyTimeout: 20_000 });
    });
    try {
      const ch = await new Promise<import('ssh2').ClientChannel>((resolve, reject) => client.subsys('netconf', (e, c) => (e ? reject(e) : resolve(c))));
      const nc = new NetconfClient(ch);
      await nc.hello();
      setup.push(performance.now() - s0);
      // two RPCs; the second is timed (the first warms the device's code paths)
      await nc.rpc('<get-config><source><running/></source><filter type="subtree"><none xmlns="urn:bench"/></filter></get-config>');
      const r0 = performance.now();
      await nc.rpc('<get-config><source><running/></source><filter type="subtree"><none xmlns="urn:bench"/></filter></get-config>');
      rpc.push(performance.now() - r0);
      ch.close();
    } finally {
      client.end();
    }
  }
  return { rpc: percentiles(rpc), setup };
}
