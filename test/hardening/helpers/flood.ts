// A hostile client, run as its own process so its sockets and memory are not the gateway's:
// opens many TCP connections from several loopback source addresses to each target and
// holds them, each playing one of: silent, random bytes, an SSH banner then silence, a half
// SSH handshake (banner, then the start of a 1 MiB packet, then silence), or a slow HTTP
// request. Bounded in count and time; prints one JSON summary line and exits.
// Usage: node flood.js '{"targets":[{"port":N,"kind":"ssh"|"http","count":N}],"sources":5,"holdMs":15000}'
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

interface Target {
  port: number;
  kind: 'ssh' | 'http';
  count: number;
}
interface Plan {
  targets: Target[];
  sources: number;
  holdMs: number;
  concurrency?: number;
}

function fdLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    return Number(line?.split(/\s{2,}/)[1] ?? 1024);
  } catch {
    return 1024;
  }
}

const plan = JSON.parse(process.argv[2] ?? '{}') as Plan;
const limit = fdLimit();
const budget = Math.max(100, limit - 200);
const total = plan.targets.reduce((n, t) => n + t.count, 0);
const scale = total > budget ? budget / total : 1;
const SSH_MODES = ['silent', 'garbage', 'banner', 'half'] as const;
const HTTP_MODES = ['silent', 'garbage', 'slow'] as const;

const stats = {
  planned: total,
  fdLimit: limit,
  opened: 0,
  connectErrors: 0,
  closedByServer: 0,
  heldAtEnd: 0,
  maxOpen: 0,
  byTarget: {} as Record<string, { opened: number; closedByServer: number }>,
};
const open = new Set<net.Socket>();
let ending = false;

function play(socket: net.Socket, kind: Target['kind'], i: number): void {
  if (kind === 'ssh') {
    const mode = SSH_MODES[i % SSH_MODES.length]!;
    if (mode === 'garbage') socket.write(randomBytes(2048));
    if (mode === 'banner') socket.write('SSH-2.0-flood_1.0\r\n');
    if (mode === 'half') {
      socket.write('SSH-2.0-flood_1.0\r\n');
      const header = Buffer.alloc(6);
      header.writeUInt32BE(1 << 20, 0); // a packet that claims 1 MiB and never comes
      header[4] = 4;
      header[5] = 20; // SSH_MSG_KEXINIT
      socket.write(header);
    }
  } else {
    const mode = HTTP_MODES[i % HTTP_MODES.length]!;
    if (mode === 'garbage') socket.write(randomBytes(2048));
    if (mode === 'slow') socket.write('GET /api/devices HTTP/1.1\r\nHost: x\r\nX-a: ');
  }
}

async function flood(t: Target, index: number): Promise<void> {
  const count = Math.floor(t.count * scale);
  const key = `${t.kind}:${t.port}`;
  const mine = (stats.byTarget[key] = { opened: 0, closedByServer: 0 });
  const concurrency = plan.concurrency ?? 100;
  let next = 0;
  const worker = async () => {
    while (!ending && next < count) {
      const i = next++;
      await new Promise<void>((resolve) => {
        const source = `127.0.${10 + index}.${1 + (i % plan.sources)}`;
        const socket = net.connect({ host: '127.0.0.1', port: t.port, localAddress: source });
        socket.on('error', () => {});
        socket.once('connect', () => {
          stats.opened++;
          mine.opened++;
          open.add(socket);
          stats.maxOpen = Math.max(stats.maxOpen, open.size);
          play(socket, t.kind, i);
          resolve();
        });
        socket.on('data', () => {}); // read and drop what the server says
        socket.once('close', () => {
          if (open.delete(socket) && !ending) {
            stats.closedByServer++;
            mine.closedByServer++;
          }
          resolve();
        });
        socket.once('error', () => {
          stats.connectErrors++;
          resolve();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const started = Date.now();
await Promise.race([Promise.all(plan.targets.map((t, i) => flood(t, i))), new Promise((r) => setTimeout(r, plan.holdMs))]);
const left = plan.holdMs - (Date.now() - started);
if (left > 0) await new Promise((r) => setTimeout(r, left));
ending = true;
stats.heldAtEnd = open.size;
for (const s of open) s.destroy();
process.stdout.write(JSON.stringify(stats) + '\n');
process.exit(0);
