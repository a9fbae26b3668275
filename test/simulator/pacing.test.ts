// The fleet's pacing: --rate spreads first attempts over time, and reconnects are jittered
// so that a gateway restart is not answered by every device in the same instant.
import test from 'ava';
import { Fleet } from '../../src/simulator/fleet.js';
import { TestGateway } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

test('rate: 12 devices at 20/s start over about half a second, not at once', async (t) => {
  const gw = await TestGateway.start();
  const fleet = new Fleet({ count: 12 });
  t.teardown(async () => {
    await fleet.close();
    await gw.close();
  });
  const startedAt: number[] = [];
  let seen = 0;
  const t0 = Date.now();
  const summary = await fleet.start('127.0.0.1', gw.port, {
    rate: 20,
    onProgress: (p) => {
      while (seen < p.started) {
        seen++;
        startedAt.push(Date.now());
      }
    },
  });
  t.is(summary.connected, 12);
  t.is(startedAt.length, 12);
  const span = startedAt[11]! - startedAt[0]!;
  // 11 gaps of 50 ms; timers may be late, never early by more than a tick
  t.true(span >= 450 && span < 5000, `first to last start: ${span} ms`);
  // never ahead of the schedule (a late timer may catch up, but never start early)
  startedAt.forEach((at, i) => t.true(i + 1 <= Math.floor(((at - t0) * 20) / 1000) + 1, `device ${i + 1} started ${at - t0} ms in`));
});

test('reconnect delays are jittered across devices, each within [d/2, d)', async (t) => {
  const gw = await TestGateway.start();
  gw.refuse = true;
  const fleet = new Fleet({ count: 30, persistent: true, reconnectDelay: { initial: 0.4, max: 1 } });
  t.teardown(async () => {
    await fleet.close();
    await gw.close();
  });
  const firstDelay = new Map<string, number>();
  for (const d of fleet.devices) d.once('reconnecting', (ms: number) => firstDelay.set(d.id, ms));
  void fleet.start('127.0.0.1', gw.port, { rate: Infinity });
  await waitFor('every device to reconnect once', () => firstDelay.size >= 30, { timeoutMs: 15_000, intervalMs: 20 }).catch(() => undefined);
  const delays = [...firstDelay.values()];
  t.is(delays.length, 30);
  for (const ms of delays) t.true(ms >= 200 && ms <= 400, `delay ${ms}`);
  t.true(new Set(delays).size >= 15, `only ${new Set(delays).size} distinct delays`);
  t.true(Math.max(...delays) - Math.min(...delays) >= 100, 'delays spread over at least 100 ms');
});
