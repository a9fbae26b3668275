// NETCONF keepalives of a held session, with no timers: what each tick decides.
import test from 'ava';
import { Keepalive } from '../../../src/device/held/keepalive.js';
import { keepaliveRpc } from '../../../src/netconf/vocabulary.js';

test('an idle session sends a keepalive each tick, but not in the middle of a client message', (t) => {
  const k = new Keepalive(1000, 0);
  t.true(k.wanted);
  t.deepEqual(k.tick(1000, 0, false), { kind: 'send' });
  t.deepEqual(k.tick(2000, 0, true), { kind: 'none' });
});

test('with requests outstanding, a device silent for more than three intervals is dead', (t) => {
  const k = new Keepalive(1000, 0);
  k.heard(500);
  t.deepEqual(k.tick(3000, 1, false), { kind: 'none' }, 'silent 2.5 intervals: still waiting');
  t.deepEqual(k.tick(3500, 1, false), { kind: 'none' }, 'exactly three intervals is not more');
  t.deepEqual(k.tick(3600, 1, false), { kind: 'dead', silentMs: 3100 });
  k.heard(3700);
  t.deepEqual(k.tick(4000, 1, false), { kind: 'none' }, 'hearing anything resets the clock');
});

test('turned off (or interval 0) it asks for nothing', (t) => {
  const k = new Keepalive(1000, 0);
  k.set(false);
  t.is(k.state, 'off');
  t.false(k.wanted);
  t.deepEqual(k.tick(10_000, 1, false), { kind: 'none' });
  k.set(true);
  t.deepEqual(k.tick(10_000, 0, false), { kind: 'send' });
  t.false(new Keepalive(0, 0).wanted);
});

test('the keepalive is a <get> with an empty subtree filter', (t) => {
  t.is(
    keepaliveRpc('callhome-gateway-keepalive-3'),
    '<rpc message-id="callhome-gateway-keepalive-3" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get><filter type="subtree"/></get></rpc>',
  );
});
