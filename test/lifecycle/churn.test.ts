// Leak check: CHURN_CYCLES (default 10,000; see below) connect/disconnect cycles of in-process
// simulated devices against an in-process gateway. Half the connections are dropped by the
// gateway (registry kill), half by the device; each cycle is a full SSH handshake, login,
// capabilities exchange and teardown. Heap (after GC) and active handles/requests are
// measured after a warm-up and after the churn, with every device gone both times; they
// must return to the baseline: the same handles and requests, and the heap within
// HEAP_TOLERANCE_MB.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { SimulatedDevice, SshHost } from '../../src/simulator/index.js';
import type { DeviceSession } from '../../src/device/session.js';
import { waitFor } from '../helpers/wait.js';

// Measured on the 2-core CI machine (both SSH ends run in this process, so it is CPU-bound):
// 55 to 220 cycles/s depending on what else runs; 10,000 cycles took 82 s with other test
// suites running and 41 s on a quiet machine (47 s for the whole file), so the full
// 10,000 is the default; CHURN_CYCLES lowers it for a quick local run.
const CYCLES = Number(process.env.CHURN_CYCLES ?? 10_000);
const WARMUP = Number(process.env.CHURN_WARMUP ?? 300);
const PARALLEL = 16;
const HEAP_TOLERANCE_MB = 8;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function settleHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().heapUsed;
}

function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

test('connect/disconnect churn returns heap and handles to their baseline', async (t) => {
  t.timeout(10 * 60_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-churn-'));
  const host = new SshHost({ keepaliveInterval: 0 });
  const devices = Array.from({ length: PARALLEL }, (_, i) => ({ id: `churn-${i}`, seed: Buffer.alloc(32, i + 1) }));
  const probe = devices.map((d) => new SimulatedDevice({ ...d, password: 'pw', sshHost: host }));
  writeFileSync(
    path.join(dir, 'devices.yaml'),
    'devices:\n' + probe.map((d) => `  - id: ${d.id}\n    ssh: { hostKeys: ["${d.fingerprint}"] }\n    credentials: { username: admin, password: pw }\n`).join(''),
  );
  writeFileSync(path.join(dir, 'users.yaml'), 'users: []\n');
  const config = loadConfig([], {
    CHGW_STATEDIR: path.join(dir, 'state'),
    CHGW_INVENTORY_FILE: path.join(dir, 'devices.yaml'),
    CHGW_USERS_FILE: path.join(dir, 'users.yaml'),
    CHGW_CALLHOME_SSH_HOST: '127.0.0.1',
    CHGW_CALLHOME_SSH_PORT: '0',
    CHGW_CALLHOME_TLS_HOST: '127.0.0.1',
    CHGW_CALLHOME_TLS_PORT: '0',
    // 16 simulated devices redial from one address on purpose: no per-source cap here.
    CHGW_CALLHOME_PERSOURCEMAXSTARTUPS: '0',
    CHGW_NORTHBOUND_HOST: '127.0.0.1',
    CHGW_NORTHBOUND_PORT: '0',
    CHGW_HTTP_HOST: '127.0.0.1',
    CHGW_HTTP_PORT: '0',
  });
  const gateway = new Gateway(config, createLogger('silent'));
  await gateway.start();
  t.teardown(() => gateway.destroy());
  const port = gateway.addresses().callhomeSsh;

  let done = 0;
  /** Runs `cycles` connections spread over the devices; resolves when all have ended. */
  async function churn(cycles: number): Promise<void> {
    done = 0;
    let started = 0;
    const sims = devices.map((d) => new SimulatedDevice({ ...d, password: 'pw', sshHost: host, persistent: true, reconnectDelay: { initial: 0.001, max: 0.002 } }));
    const finished = new Promise<void>((resolve) => {
      const onAdded = (session: DeviceSession) => {
        started++;
        const sim = sims.find((s) => s.id === session.deviceId)!;
        session.once('closed', () => {
          done++;
          if (done === cycles) {
            gateway.registry.off('added', onAdded);
            resolve();
          }
        });
        if (started > cycles) {
          // Enough: this device stops for good.
          void sim.close();
        } else if (started % 2 === 0) {
          setImmediate(() => gateway.registry.kill(session.deviceId, new GatewayError('GW_ERR_REMOVED', 'churn')));
        } else {
          setImmediate(() => sim.disconnect());
        }
      };
      gateway.registry.on('added', onAdded);
    });
    for (const sim of sims) sim.connect('127.0.0.1', port).catch(() => {});
    await finished;
    await Promise.all(sims.map((s) => s.close()));
    await waitFor('the gateway to hold no device', () => gateway.registry.size === 0 && gateway.inFlight.size === 0, { timeoutMs: 10_000, intervalMs: 20 }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300)); // sockets finish closing, setImmediate destroys run
  }

  await churn(WARMUP);
  const heapBefore = await settleHeap();
  const handlesBefore = resources();
  const rssBefore = process.memoryUsage().rss;

  const started = Date.now();
  await churn(CYCLES);
  const seconds = (Date.now() - started) / 1000;
  const heapAfter = await settleHeap();
  const handlesAfter = resources();
  const rssAfter = process.memoryUsage().rss;

  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  t.log(`${CYCLES} cycles (${PARALLEL} devices in parallel) in ${seconds.toFixed(1)} s, ${(CYCLES / seconds).toFixed(0)} cycles/s`);
  t.log(`heap after GC: ${mb(heapBefore)} MB -> ${mb(heapAfter)} MB (tolerance ${HEAP_TOLERANCE_MB} MB); rss ${mb(rssBefore)} -> ${mb(rssAfter)} MB`);
  t.log(`handles/requests before: ${JSON.stringify(handlesBefore)}`);
  t.log(`handles/requests after:  ${JSON.stringify(handlesAfter)}`);
  t.is(gateway.registry.size, 0);
  t.deepEqual(handlesAfter, handlesBefore, 'the same handles and requests as before the churn');
  t.true(heapAfter - heapBefore < HEAP_TOLERANCE_MB * 1024 * 1024, `heap grew by ${mb(heapAfter - heapBefore)} MB`);
  t.true((await gateway.metrics.registry.getSingleMetricAsString('callhome_devices_connected')).includes('callhome_devices_connected{transport="ssh"} 0'));
});
