// Who gets a held session next, with no streams or timers: admission, order and the
// waiting/busy events the metrics follow.
import test from 'ava';
import { LendQueue } from '../../../src/device/held/lend-queue.js';

function queue(waitForDevice: number, drainTimeout = 5) {
  const seen = { waiting: 0, busy: 0 };
  const q = new LendQueue<string>({ waitForDevice, drainTimeout }, { waiting: (d) => (seen.waiting += d), busy: () => seen.busy++ });
  return { q, seen };
}

test('a free, drained session is granted at once; a held one makes clients wait in order', (t) => {
  const { q, seen } = queue(10);
  t.deepEqual(q.enter('a', false, true), { kind: 'grant' });
  t.deepEqual(q.enter('b', true, true), { kind: 'wait', seconds: 10 });
  t.deepEqual(q.enter('c', true, true), { kind: 'wait', seconds: 10 });
  t.is(q.length, 2);
  t.is(seen.waiting, 2);
  t.is(q.next(), 'b');
  t.is(q.next(), 'c');
  t.is(q.next(), undefined);
  t.is(seen.waiting, 0);
});

test('a free session behind others is not granted ahead of them', (t) => {
  const { q } = queue(10);
  q.enter('b', true, true);
  t.deepEqual(q.enter('c', false, true), { kind: 'wait', seconds: 10 }, 'first come, first served');
});

test('without waitForDevice a held session is refused as busy, but draining is waited for up to drainTimeout', (t) => {
  const { q, seen } = queue(0, 7);
  t.deepEqual(q.enter('a', true, true), { kind: 'busy' });
  t.is(seen.busy, 1);
  t.deepEqual(q.enter('b', false, false), { kind: 'wait', seconds: 7 }, 'only replies to a departed client are due');
  t.is(seen.waiting, 1);
});

test('a waiter that leaves or times out is taken off the queue once; the device going away empties it', (t) => {
  const { q, seen } = queue(10);
  q.enter('a', true, true);
  q.enter('b', true, true);
  q.enter('c', true, true);
  t.true(q.leave('a', false));
  t.false(q.leave('a', false), 'already gone');
  t.true(q.leave('b', true));
  t.is(seen.busy, 1, 'a timed-out waiter counts as busy');
  t.deepEqual(q.clear(), ['c']);
  t.is(seen.waiting, 0);
  t.is(q.length, 0);
});
