// The gateway's V8 heap flags (src/heap.ts): every way the gateway is launched in
// production passes them, and a gateway process says at start whether it has them.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatewayProcess } from '../bench/lib/gateway-process.js';
import { GATEWAY_NODE_FLAGS, missingNodeFlags } from '../src/heap.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string): string => readFileSync(root + file, 'utf8');
const EMPTY = { inventory: 'devices: []\n', users: 'users: []\n' };
const flags = GATEWAY_NODE_FLAGS.join(' ');

test('the bin, npm start and the image pass the heap flags to node', (t) => {
  const shebang = read('dist/src/cli/main.js').split('\n')[0]!;
  t.is(shebang, `#!/usr/bin/env -S node ${flags}`);
  const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
  t.regex(start, new RegExp(`node ${flags} dist/src/cli/main\\.js run$`));
  const dockerfile = read('Dockerfile');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  t.deepEqual(JSON.parse(entrypoint ?? 'null'), ['node', ...GATEWAY_NODE_FLAGS, '/app/dist/src/cli/main.js']);
  t.true(dockerfile.includes(`exec node ${flags} /app/dist/src/cli/main.js`), 'the callhome-gateway wrapper in the image');
});

test('launched with the flags, the gateway says so at start', async (t) => {
  const gw = await GatewayProcess.start(EMPTY);
  t.teardown(() => gw.stop());
  t.deepEqual(gw.heapReport, { inEffect: true, flags: [...GATEWAY_NODE_FLAGS] });
  t.notThrows(() => gw.assertHeapSettings());
  t.true(gw.logs.some((l) => /"level":"info"/.test(l) && /V8 heap sized for bulk transfers/.test(l)));
});

test('launched without them, the gateway warns and the benchmark refuses it', async (t) => {
  const gw = await GatewayProcess.start({ ...EMPTY, heapFlags: [] });
  t.teardown(() => gw.stop());
  t.deepEqual(gw.heapReport, { inEffect: false, flags: [...GATEWAY_NODE_FLAGS] });
  t.true(
    gw.logs.some((l) => /"level":"warn"/.test(l) && l.includes(`node started without ${flags}`)),
    gw.logs.join('\n'),
  );
  t.throws(() => gw.assertHeapSettings(), { message: new RegExp(`runs without ${flags}`) });
});

test('the flags are read as V8 reads them: either spelling, the last one wins', (t) => {
  t.deepEqual(missingNodeFlags([]), [...GATEWAY_NODE_FLAGS]);
  t.deepEqual(missingNodeFlags(['--heap-growing-percent=300']), []);
  t.deepEqual(missingNodeFlags(['--heap_growing_percent=300', '--max-old-space-size=512']), []);
  t.deepEqual(missingNodeFlags(['--heap-growing-percent=300', '--heap-growing-percent=50']), ['--heap-growing-percent=300']);
  t.deepEqual(missingNodeFlags(['--heap-growing-percent=30']), ['--heap-growing-percent=300']);
});
