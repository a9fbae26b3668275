import test from 'ava';
import { Counter, Registry } from 'prom-client';
import { GatewayError } from '../../src/errors.js';
import { FlapDetector, type FlapView } from '../../src/device/flapping.js';

function detector(): { flaps: FlapDetector; counter: Counter<'transport'>; announced: FlapView[] } {
  const counter = new Counter({ name: 'flaps_total', help: 'h', labelNames: ['transport'], registers: [new Registry()] });
  const announced: FlapView[] = [];
  return { flaps: new FlapDetector({ window: 10, count: 3 }, counter, (_id, v, first) => first && announced.push(v)), counter, announced };
}
const closed = new GatewayError('GW_ERR_DEVICE_CLOSED', 'device closed the connection');
const value = async (c: Counter<'transport'>) => (await c.get()).values.find((v) => v.labels.transport === 'ssh')?.value ?? 0;

test('short connections in a row make a device flapping; the count-th and later ones are counted', async (t) => {
  const { flaps, counter, announced } = detector();
  let now = 1_000_000;
  for (let i = 1; i <= 4; i++) {
    flaps.connected('d', now);
    now += 2_000;
    flaps.disconnected('d', 'ssh', now - 2_000, closed, now);
    now += 1_000;
    t.is(flaps.view('d', now) !== undefined, i >= 3, `after ${i} short connections`);
  }
  t.is(await value(counter), 2);
  t.is(announced.length, 1, 'announced once');
  t.like(flaps.view('d', now), { shortConnections: 4, lastReason: 'GW_ERR_DEVICE_CLOSED' });
});

test('a connection that outlives the window ends the streak; so does staying away for a minute', (t) => {
  const { flaps } = detector();
  let now = 0;
  const short = () => {
    flaps.connected('d', now);
    flaps.disconnected('d', 'ssh', now, closed, (now += 1_000));
  };
  short();
  short();
  short();
  t.truthy(flaps.view('d', now));
  t.falsy(flaps.view('d', now + 61_000), 'away for over a minute: no longer shown as flapping');
  flaps.connected('d', now);
  t.truthy(flaps.view('d', now + 5_000), 'connected again, but not for long yet');
  t.falsy(flaps.view('d', now + 11_000), 'connected beyond the window');
  flaps.disconnected('d', 'ssh', now, closed, now + 60_000);
  short();
  t.falsy(flaps.view('d', now), 'the long connection reset the streak');
});

test('endings the gateway caused are not flaps; a replaced connection ending after the new one began does not unset it', (t) => {
  const { flaps } = detector();
  for (let i = 0; i < 5; i++) {
    flaps.connected('d', i * 1000);
    flaps.disconnected('d', 'ssh', i * 1000, new GatewayError('GW_ERR_SHUTDOWN', 'gateway shutting down'), i * 1000 + 500);
  }
  t.falsy(flaps.view('d', 5_000));
  flaps.connected('e', 0);
  flaps.connected('e', 1_000); // the device called again before its old connection's end was seen
  flaps.disconnected('e', 'ssh', 0, new GatewayError('GW_ERR_REPLACED', 'replaced'), 1_000);
  flaps.retain(['e']);
  t.falsy(flaps.view('e', 1_500));
});
