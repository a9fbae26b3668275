// Ownership against a real redis-server: claim/lookup/release, epochs fencing a stale
// replica, lease expiry, supersede events, re-registration after Redis restarts.
import test from 'ava';
import { once } from 'node:events';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { ClusterRedis } from '../../src/cluster/redis.js';
import { KEYS, RedisOwnership } from '../../src/cluster/ownership.js';
import type { DeviceOwner } from '../../src/cluster/types.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

interface Replica {
  redis: ClusterRedis;
  ownership: RedisOwnership;
  close(): Promise<void>;
}

async function replica(server: TestRedis, id: string, leaseTtl = 15): Promise<Replica> {
  const config = loadConfig([], { CHGW_CLUSTER_REDIS_URL: server.url });
  const logger = createLogger('silent');
  const redis = new ClusterRedis(config, logger);
  await redis.connect();
  const ownership = new RedisOwnership(redis, { replicaId: id, peer: `${id}.peers:9835`, leaseTtl, logger });
  for (const event of ['ready', 'subscribed']) redis.on(event, () => void ownership.reRegister().catch(() => undefined));
  await ownership.start();
  return {
    redis,
    ownership,
    async close() {
      await ownership.close();
      await redis.close();
    },
  };
}

/** Ownerships of two replicas on one fresh Redis, closed after the test. */
async function pair(t: { teardown(fn: () => unknown): void }, leaseTtl = 15) {
  const server = await startRedis();
  const a = await replica(server, 'a', leaseTtl);
  const b = await replica(server, 'b', leaseTtl);
  t.teardown(async () => {
    await Promise.allSettled([a.close(), b.close()]);
    await server.close();
  });
  return { server, a, b };
}

test('a claim is visible to every replica with its epoch, owner and details; release removes it', async (t) => {
  const { a, b } = await pair(t);
  const since = new Date('2026-12-04T20:00:00.000Z');
  const epoch = await a.ownership.claim('r1', since, { transport: 'ssh', remoteAddress: '192.0.2.7' });
  t.true(epoch >= Date.now() - 60_000, 'epochs are Redis time in ms (rising across restarts)');
  const seen = await b.ownership.lookup('r1');
  t.deepEqual(seen, { deviceId: 'r1', epoch, replica: 'a', peer: 'a.peers:9835', since: since.toISOString(), transport: 'ssh', remoteAddress: '192.0.2.7' });
  t.deepEqual([...(await b.ownership.owners()).keys()], ['r1']);
  t.is(await b.ownership.lookup('nope'), undefined);
  await a.ownership.release('r1', epoch);
  t.is(await b.ownership.lookup('r1'), undefined);
});

test('epochs rise with every claim; a stale release (older epoch, other replica) leaves the record', async (t) => {
  const { a, b } = await pair(t);
  const e1 = await a.ownership.claim('r1', new Date());
  const e2 = await b.ownership.claim('r1', new Date());
  t.true(e2 > e1);
  await a.ownership.release('r1', e1); // A's old connection ends after B took over
  t.is((await a.ownership.lookup('r1'))?.replica, 'b');
  await b.ownership.release('r1', e1); // B, at the wrong epoch
  t.is((await a.ownership.lookup('r1'))?.epoch, e2);
  const e3 = await a.ownership.claim('r1', new Date());
  t.true(e3 > e2);
});

test('a claim on B supersedes the connection A holds (event), never the other way round', async (t) => {
  const { a, b } = await pair(t);
  const owned: DeviceOwner[] = [];
  a.ownership.on('owned', (o: DeviceOwner) => owned.push(o));
  let bSuperseded = 0;
  b.ownership.on('superseded', () => bSuperseded++);
  await a.ownership.claim('r1', new Date());
  await waitFor('own claim event', () => owned.length === 1, { timeoutMs: 2000 });
  const superseded = once(a.ownership, 'superseded');
  const started = Date.now();
  const epoch = await b.ownership.claim('r1', new Date());
  const [device, by] = (await superseded) as [string, DeviceOwner];
  t.true(Date.now() - started < 2000);
  t.is(device, 'r1');
  t.is(by.replica, 'b');
  t.is(by.epoch, epoch);
  t.is(a.ownership.heldCount, 0);
  t.is(b.ownership.heldCount, 1);
  await waitFor('the claim event of B on A', () => owned.length === 2, { timeoutMs: 2000 });
  // A re-registering what it believes it holds cannot take the device back.
  await a.ownership.reRegister();
  t.is((await a.ownership.lookup('r1'))?.replica, 'b');
  t.is(bSuperseded, 0);
});

test('a replica whose lease expires stops owning its devices; the sweep removes its records', async (t) => {
  const { server, a } = await pair(t, 1);
  const logger = createLogger('silent');
  const config = loadConfig([], { CHGW_CLUSTER_REDIS_URL: server.url });
  // A replica that dies without a word: its lease ran out and it never renews.
  const deadRedis = new ClusterRedis(config, logger);
  await deadRedis.connect();
  const dead = new RedisOwnership(deadRedis, { replicaId: 'dead', peer: 'dead:9835', leaseTtl: 1, logger });
  await dead.start();
  await dead.claim('r9', new Date());
  t.is((await a.ownership.lookup('r9'))?.replica, 'dead');
  t.deepEqual(
    (await a.ownership.replicas()).map((r) => r.id),
    ['a', 'b', 'dead'],
  );
  // Stop its heartbeat as kill -9 would (the connection stays open: only the lease matters).
  dead.stop();
  const cut = Date.now();
  await waitFor('the dead owner to vanish', async () => (await a.ownership.lookup('r9')) === undefined, { timeoutMs: 3000 });
  t.true(Date.now() - cut <= 1500, 'within leaseTtl');
  t.deepEqual(
    (await a.ownership.replicas()).map((r) => r.id),
    ['a', 'b'],
  );
  await waitFor('the sweep', async () => (await server.command('HEXISTS', KEYS.owners, 'r9')).startsWith(':0'), { timeoutMs: 3000 });
  deadRedis.destroy();
});

test('replicas list their peer, device count and start; a graceful close leaves at once', async (t) => {
  const { a, b } = await pair(t);
  await a.ownership.claim('r1', new Date());
  await a.ownership.claim('r2', new Date());
  await a.ownership.heartbeat();
  const list = await b.ownership.replicas();
  t.deepEqual(
    list.map(({ id, peer, devices }) => ({ id, peer, devices })),
    [
      { id: 'a', peer: 'a.peers:9835', devices: 2 },
      { id: 'b', peer: 'b.peers:9835', devices: 0 },
    ],
  );
  t.false(Number.isNaN(Date.parse(list[0]!.since)));
  await a.close();
  t.deepEqual(
    (await b.ownership.replicas()).map((r) => r.id),
    ['b'],
  );
  t.deepEqual([...(await b.ownership.owners()).keys()], []);
});

test('Redis down: lookups fail fast with GW_ERR_CLUSTER_UNAVAILABLE; back: every held device is registered again', async (t) => {
  const { server, a, b } = await pair(t);
  const e1 = await a.ownership.claim('r1', new Date());
  await b.ownership.claim('r2', new Date());
  await server.stop();
  await waitFor('both to see Redis down', () => !a.redis.up && !b.redis.up, { timeoutMs: 5000 });
  const started = Date.now();
  const err = await t.throwsAsync(b.ownership.lookup('r1'));
  t.true(Date.now() - started < 200, 'fails at once');
  t.is((err as { code?: string }).code, 'GW_ERR_CLUSTER_UNAVAILABLE');
  t.regex(err!.message, /device r1: .*Redis is unreachable/);
  // A device that connects during the outage is held and registered later.
  await t.throwsAsync(a.ownership.claim('r3', new Date()), { code: 'GW_ERR_CLUSTER_UNAVAILABLE' } as never);
  t.is(a.ownership.heldCount, 2);
  await server.start(); // empty: no persistence
  await waitFor('re-registration', async () => a.redis.up && b.redis.up && (await b.ownership.owners().catch(() => new Map())).size === 3, { timeoutMs: 10_000 });
  const owners = await b.ownership.owners();
  t.is(owners.get('r1')?.replica, 'a');
  t.is(owners.get('r1')?.epoch, e1, 'the epoch it had');
  t.is(owners.get('r2')?.replica, 'b');
  t.is(owners.get('r3')?.replica, 'a');
  // A claim after the restart still outranks the epochs from before it.
  t.true((await b.ownership.claim('r1', new Date())) > e1);
});

test('after an outage the newer connection wins the re-registration, whichever replica comes back first', async (t) => {
  const { server, a, b } = await pair(t);
  const eA = await a.ownership.claim('r1', new Date());
  await server.stop();
  await waitFor('both to see Redis down', () => !a.redis.up && !b.redis.up, { timeoutMs: 5000 });
  // The device moves to B while Redis is away (B's claim cannot reach Redis).
  await new Promise((r) => setTimeout(r, 5));
  await t.throwsAsync(b.ownership.claim('r1', new Date()));
  const superseded = once(a.ownership, 'superseded');
  await server.start();
  const [device] = (await superseded) as [string];
  t.is(device, 'r1');
  await waitFor('B as owner', async () => (await b.ownership.lookup('r1').catch(() => undefined))?.replica === 'b', { timeoutMs: 10_000 });
  t.true((await b.ownership.lookup('r1'))!.epoch > eA);
  t.is(b.ownership.heldCount, 1);
});

test('a replica started again under the same id drops the records its earlier run left', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.close());
  const first = await replica(server, 'a');
  await first.ownership.claim('r1', new Date());
  first.redis.destroy(); // kill -9: no release
  const again = await replica(server, 'a');
  t.teardown(() => again.close());
  t.is(await again.ownership.lookup('r1'), undefined);
});
