// The gateway's V8 heap setting (src/heap.ts): every way the gateway is launched in
// production passes it, and a gateway process says at start whether it has it.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatewayProcess } from '../bench/lib/gateway-process.js';
import { GATEWAY_NODE_FLAGS, SEMI_SPACE_MIB, minSemiSpaceMiB } from '../src/heap.js';

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

test('launched with the flags, the gateway logs the young generation it has', async (t) => {
  const gw = await GatewayProcess.start(EMPTY);
  t.teardown(() => gw.stop());
  t.is(gw.semiSpaceMiB, SEMI_SPACE_MIB);
  t.notThrows(() => gw.assertHeapSettings());
  t.true(gw.logs.some((l) => /"level":"info"/.test(l) && /V8 young generation sized for bulk transfers/.test(l)));
});

test('launched without them, the gateway warns and the benchmark refuses it', async (t) => {
  // a later flag wins, as in V8
  const gw = await GatewayProcess.start({ ...EMPTY, nodeArgs: ['--min-semi-space-size=1'] });
  t.teardown(() => gw.stop());
  t.is(gw.semiSpaceMiB, 1);
  t.true(
    gw.logs.some((l) => /"level":"warn"/.test(l) && l.includes(`node started without ${flags}`)),
    gw.logs.join('\n'),
  );
  t.throws(() => gw.assertHeapSettings(), { message: /1 MiB semi-space, not the 16 MiB/ });
});

test('the semi-space flag is read as V8 reads it: either spelling, the last one wins', (t) => {
  t.is(minSemiSpaceMiB([]), 0);
  t.is(minSemiSpaceMiB(['--min-semi-space-size=16']), 16);
  t.is(minSemiSpaceMiB(['--min_semi_space_size=32']), 32);
  t.is(minSemiSpaceMiB(['--min-semi-space-size=16', '--max-old-space-size=512', '--min-semi-space-size=1']), 1);
  t.is(minSemiSpaceMiB(['--max-semi-space-size=16']), 0);
});
