// Scenario 4: M managers (OpenSSH clients) at once, each streaming one reply of `replySize`
// bytes from its own simulated device, all through one gateway process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../test/e2e/peers/util.js';
import { GatewayProcess } from '../lib/gateway-process.js';
import { NetconfManager } from '../lib/manager.js';
import { SimulatorProcess, writeSimulatorInventory } from '../lib/simulator-process.js';
import { round } from '../lib/stats.js';

export interface ConcurrencyOptions {
  managers: number;
  replySize: number;
  cipher?: string;
  log?: (line: string) => void;
}

export interface ConcurrencyResult {
  managers: number;
  replyBytes: number;
  aggregateMBps: number;
  slowestMBps: number;
  fastestMBps: number;
  /** slowest / fastest (1 = perfectly fair) */
  fairness: number;
  wallSeconds: number;
}

export async function runConcurrency(o: ConcurrencyOptions): Promise<ConcurrencyResult> {
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'chgw-bench-conc-'));
  const sim = { count: o.managers, seed: 'bench-concurrency', rate: 200, replySize: o.replySize };
  const invFile = join(dir, 'devices.yaml');
  writeSimulatorInventory(sim, invFile);
  const key = await generateKeyPair(join(dir, 'id_ed25519'), 'bench-manager');
  const gw = await GatewayProcess.start({
    inventory: readFileSync(invFile, 'utf8'),
    users: `users:\n  - name: bench\n    authorizedKeys: ["${key.publicKeyLine}"]\n    devices: ["*"]\n`,
  });
  const simulator = SimulatorProcess.start(sim, gw.callhomePort);
  const managers: NetconfManager[] = [];
  try {
    gw.assertNativeCrypto();
    gw.assertHeapSettings();
    await gw.waitForConnected(o.managers, 120_000);
    for (let i = 0; i < o.managers; i++) {
      managers.push(
        await NetconfManager.open({
          host: '127.0.0.1',
          port: gw.northboundPort,
          user: `bench@sim-${String(i + 1).padStart(5, '0')}`,
          identityFile: key.privateKeyFile,
          cipher: o.cipher ?? 'aes128-gcm@openssh.com',
        }),
      );
    }
    log(`concurrency: ${o.managers} sessions open`);
    const t0 = performance.now();
    const ends = await Promise.all(
      managers.map(async (m) => {
        await m.rpc(1, '<get/>');
        if (m.received < o.replySize * 0.99) throw new Error(`reply of ${m.received} bytes, expected ${o.replySize}`);
        return { end: performance.now(), bytes: m.received };
      }),
    );
    const wall = (Math.max(...ends.map((e) => e.end)) - t0) / 1000;
    const total = ends.reduce((s, e) => s + e.bytes, 0);
    const rates = ends.map((e) => e.bytes / ((e.end - t0) / 1000) / 1e6);
    const result = {
      managers: o.managers,
      replyBytes: o.replySize,
      aggregateMBps: round(total / wall / 1e6, 1),
      slowestMBps: round(Math.min(...rates), 2),
      fastestMBps: round(Math.max(...rates), 2),
      fairness: round(Math.min(...rates) / Math.max(...rates), 2),
      wallSeconds: round(wall, 2),
    };
    log(`concurrency: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await Promise.all(managers.map((m) => m.close()));
    await simulator.stop();
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
