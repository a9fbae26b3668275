// Memory per simulated device: N devices in this process call a test gateway in a child
// process (so only the devices are measured), and RSS / heap are read before and after.
//   node --expose-gc dist/test/simulator/measure-rss.js [N] [shared|separate]
// `separate` gives every device its own ssh2 Server, to show what sharing one saves.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { SimulatedDevice } from '../../src/simulator/device.js';
import { SshHost } from '../../src/simulator/ssh-host.js';
import { deriveSeed } from '../../src/simulator/keys.js';
import { TestGateway } from './helpers.js';

const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external + m.arrayBuffers };
}

async function gatewayChild(): Promise<void> {
  const gw = await TestGateway.start();
  process.send!({ port: gw.port });
  process.on('message', () => {
    process.send!({ connected: gw.connections.length });
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const mode = process.argv[3] ?? 'shared';
  if (!gc) console.error('run with --expose-gc for steadier figures');
  const child = fork(fileURLToPath(import.meta.url), ['gateway'], { stdio: 'inherit' });
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];

  const base = await settle();
  const host = mode === 'shared' ? new SshHost() : undefined;
  const devices = Array.from({ length: n }, (_v, i) => {
    const id = `sim-${String(i + 1).padStart(5, '0')}`;
    return new SimulatedDevice({ id, seed: deriveSeed('rss', id), sshHost: host });
  });
  const idle = await settle();
  const started = Date.now();
  // in waves, so the single-process gateway is not handed 1,000 handshakes at once
  for (let i = 0; i < n; i += 100) await Promise.all(devices.slice(i, i + 100).map((d) => d.connect('127.0.0.1', port)));
  const took = Date.now() - started;
  await new Promise((r) => setTimeout(r, 1000));
  const up = await settle();
  const kib = (b: number): string => (b / 1024 / n).toFixed(1);
  console.log(
    JSON.stringify({
      devices: n,
      mode,
      connectMs: took,
      objectsOnly: { rssKiBPerDevice: kib(idle.rss - base.rss), heapKiBPerDevice: kib(idle.heap - base.heap) },
      connectedIdle: { rssKiBPerDevice: kib(up.rss - idle.rss), heapKiBPerDevice: kib(up.heap - idle.heap) },
      total: { rssKiBPerDevice: kib(up.rss - base.rss), rssMiB: (up.rss / 1024 / 1024).toFixed(1) },
    }),
  );
  await Promise.all(devices.map((d) => d.close()));
  child.kill();
}

if (process.argv[2] === 'gateway') void gatewayChild();
else void main();
