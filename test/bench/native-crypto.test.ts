// The benchmark refuses to produce figures when the gateway runs without ssh2's native
// crypto binding. The binding is hidden from a real gateway process by a preloaded module
// that makes its require() fail, as on a machine where it was never built.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../bench/lib/gateway-process.js';

const EMPTY = { inventory: 'devices: []\n', users: 'users: []\n' };

test('with the binding: the gateway logs it in use and the check passes', async (t) => {
  const gw = await GatewayProcess.start(EMPTY);
  t.teardown(() => gw.stop());
  t.is(gw.nativeCrypto, true);
  t.notThrows(() => gw.assertNativeCrypto());
  t.true(gw.logs.some((l) => /"nativeCrypto":true/.test(l) && /ssh2 native crypto binding in use/.test(l)));
});

test('without the binding: the gateway warns at start and the benchmark fails loudly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chgw-nobinding-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hide = join(dir, 'hide-sshcrypto.cjs');
  writeFileSync(
    hide,
    `const Module = require('module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (String(request).includes('sshcrypto.node')) throw new Error('binding hidden for this test');
  return load.call(this, request, ...rest);
};
`,
  );
  const gw = await GatewayProcess.start({ ...EMPTY, env: { NODE_OPTIONS: `--require ${hide}` } });
  t.teardown(() => gw.stop());
  t.is(gw.nativeCrypto, false);
  t.true(
    gw.logs.some((l) => /"level":"warn"/.test(l) && /native crypto binding missing/.test(l)),
    gw.logs.join('\n'),
  );
  t.throws(() => gw.assertNativeCrypto(), { message: /native crypto binding is NOT in use/ });
});
