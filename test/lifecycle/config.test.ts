// The lifecycle keys: defaults, the keepalive floor (ssh2 issue #474), port ranges.
import test from 'ava';
import { loadConfig } from '../../src/config/load.js';
import { MIN_KEEPALIVE_INTERVAL, parsePortRange } from '../../src/config/formats.js';
import { isGatewayError } from '../../src/errors.js';

test('lifecycle defaults', (t) => {
  const c = loadConfig([], {});
  t.deepEqual(c.callhome.keepalive, { interval: 30, countMax: 3 });
  t.deepEqual(c.northbound.keepalive, { interval: 30, countMax: 3 });
  t.is(c.northbound.waitForDevice, 0);
  t.is(c.northbound.portRange, '');
  t.is(c.shutdown.grace, 30);
});

test('keepalive intervals below 10 s are refused naming the key; 10 is accepted', (t) => {
  t.is(MIN_KEEPALIVE_INTERVAL, 10);
  for (const [env, key] of [
    ['CHGW_CALLHOME_KEEPALIVE_INTERVAL', 'callhome.keepalive.interval'],
    ['CHGW_NORTHBOUND_KEEPALIVE_INTERVAL', 'northbound.keepalive.interval'],
  ] as const) {
    const err = t.throws(() => loadConfig([], { [env]: '9.5' }));
    t.true(isGatewayError(err, 'GW_ERR_CONFIG'));
    t.regex(err!.message, new RegExp(`${key.replace(/\./g, '\\.')}: must be a number of seconds >= 10`));
    const ok = loadConfig([], { [env]: '10' });
    t.is(key.startsWith('callhome') ? ok.callhome.keepalive.interval : ok.northbound.keepalive.interval, 10);
  }
  t.throws(() => loadConfig([], { CHGW_CALLHOME_KEEPALIVE_COUNTMAX: '0' }), { message: /countMax/ });
  t.is(loadConfig([], { CHGW_SHUTDOWN_GRACE: '2.5', CHGW_NORTHBOUND_WAITFORDEVICE: '60' }).shutdown.grace, 2.5);
});

test('port ranges', (t) => {
  t.deepEqual(parsePortRange('30000-30999'), [30000, 30999]);
  t.deepEqual(parsePortRange(' 1 - 1 '), [1, 1]);
  for (const bad of ['30999-30000', '0-10', '1-70000', '30000', 'a-b', '']) t.is(parsePortRange(bad), undefined, bad);
  t.is(loadConfig([], { CHGW_NORTHBOUND_PORTRANGE: '30000-30999' }).northbound.portRange, '30000-30999');
  t.throws(() => loadConfig([], { CHGW_NORTHBOUND_PORTRANGE: '30000' }), { message: /northbound\.portRange/ });
});

test('inventory: periodic devices and their idleTimeout (IETF default 180 s)', async (t) => {
  const { parseInventory } = await import('../../src/inventory/inventory.js');
  const base = '  - id: p\n    ssh: { hostKeys: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }\n    credentials: { username: u, password: p }\n';
  t.deepEqual(parseInventory(`devices:\n${base}    periodic: true\n`, 'x.yaml').get('p')?.periodic, { idleTimeout: 180 });
  t.deepEqual(parseInventory(`devices:\n${base}    periodic: true\n    idleTimeout: 2.5\n`, 'x.yaml').get('p')?.periodic, { idleTimeout: 2.5 });
  t.is(parseInventory(`devices:\n${base}    periodic: false\n`, 'x.yaml').get('p')?.periodic, undefined);
  t.throws(() => parseInventory(`devices:\n${base}    idleTimeout: 5\n`, 'x.yaml'), { message: /idleTimeout applies to periodic devices only/ });
  t.throws(() => parseInventory(`devices:\n${base}    periodic: true\n    idleTimeout: 0\n`, 'x.yaml'), { message: /idleTimeout must be/ });
  t.throws(() => parseInventory(`devices:\n${base}    periodic: yes please\n`, 'x.yaml'), { message: /periodic must be true or false/ });
});
