// Why the gateway is launched with GATEWAY_NODE_FLAGS (src/heap.ts): fresh gateway processes,
// with and without them, alternating, each carrying a few bulk replies through the real rig
// (rig.ts: an OpenSSH device calling home, an OpenSSH manager). Prints per process the CPU
// seconds per GiB of each transfer and the full collections it ran, then the share of
// processes in the full-collection regime. Usage:
//   npm run build && node dist/bench/heap-regime.js [--processes N] [--transfers N] [--size MIB]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NetconfManager } from './lib/manager.js';
import { Rig, type Cipher } from './lib/rig.js';
import { median, round } from './lib/stats.js';
import { GATEWAY_NODE_FLAGS } from '../src/heap.js';

const { values } = parseArgs({
  options: { processes: { type: 'string' }, transfers: { type: 'string' }, size: { type: 'string' }, variant: { type: 'string', multiple: true } },
});
const processes = Number(values.processes ?? 6);
const transfers = Number(values.transfers ?? 3);
const size = Number(values.size ?? 256) * 2 ** 20;
const cipher: Cipher = 'aes128-gcm@openssh.com';
const counter = fileURLToPath(new URL('./lib/gc-counter.js', import.meta.url));
// node's defaults against the gateway's flags; or `--variant "NAME=FLAG FLAG"`, repeated.
const variants = values.variant?.map((v) => ({
  name: v.split('=')[0]!,
  heapFlags: v
    .slice(v.indexOf('=') + 1)
    .split(' ')
    .filter(Boolean),
})) ?? [
  { name: "node's defaults", heapFlags: [] },
  { name: 'GATEWAY_NODE_FLAGS', heapFlags: GATEWAY_NODE_FLAGS },
];
// A process that ran this many full collections over its transfers is in the regime (the
// others run one or two, at start-up).
const REGIME = 8;
const dir = mkdtempSync(join(tmpdir(), 'chgw-heap-regime-'));
const summary = variants.map(() => ({ inRegime: 0, cpu: [] as number[] }));
try {
  for (let p = 0; p < processes; p++) {
    for (const [i, v] of variants.entries()) {
      const countFile = join(dir, `gc-${p}-${i}`);
      process.env.BENCH_GC_COUNT_FILE = countFile;
      const rig = await Rig.start([cipher], { heapFlags: v.heapFlags, nodeArgs: ['--import', counter] });
      const cpu: number[] = [];
      try {
        for (let x = 0; x < transfers; x++) {
          const c0 = rig.gateway.stats().cpuSeconds;
          const m = await NetconfManager.open(rig.target('gateway', cipher));
          await m.rpc(1, `<get><filter type="subtree"><bulk xmlns="urn:bench" size="${size}"/></filter></get>`);
          await m.close();
          cpu.push(round(((rig.gateway.stats().cpuSeconds - c0) * 2 ** 30) / size, 2));
        }
      } finally {
        await rig.stop();
      }
      const full = Number(readFileSync(countFile, 'utf8'));
      if (full >= REGIME) summary[i]!.inRegime++;
      summary[i]!.cpu.push(...cpu.slice(1)); // the first transfer of a process includes its warm-up
      console.log(`${v.name}, process ${p + 1}: CPU-s/GiB ${cpu.join(' ')}; full collections ${full}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const [i, v] of variants.entries()) {
  const s = summary[i]!;
  console.log(
    `${v.name}: ${s.inRegime} of ${processes} processes in the full-collection regime; CPU-s/GiB after warm-up: median ${round(median(s.cpu), 2)}, worst ${Math.max(...s.cpu)}`,
  );
}
