// The Redis stores of cluster mode against a real redis-server: two "replicas" (each its own
// connections and in-memory copies) see each other's decisions, port assignments never give
// one port to two devices, writes fail with a clear reason while Redis is down, and what a
// replica holds goes back into a Redis that restarted empty.
import anyTest from 'ava';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClusterRedis } from '../../src/cluster/redis.js';
import { SharedState } from '../../src/cluster/shared-state.js';
import { STATE_KEYS } from '../../src/cluster/state-keys.js';
import { GatewayError } from '../../src/errors.js';
import { parseInventory } from '../../src/inventory/inventory.js';
import { createLogger } from '../../src/log.js';
import { ApprovalStore, type Approval } from '../../src/onboarding/approvals.js';
import { requirePeers } from '../e2e/peers/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const test = requirePeers(anyTest);
const silent = createLogger('silent');
const fp = (c: string) => 'SHA256:' + c.repeat(43);
const approval = (f: string, id: string): Approval => ({
  id,
  fingerprint: f,
  keyType: 'ssh-ed25519',
  credentials: { username: 'u', password: 'p' },
  approvedAt: new Date().toISOString(),
});
const inv = (...ids: string[]) =>
  parseInventory(
    'devices:\n' + ids.map((id) => `  - id: ${id}\n    ssh: { hostKeys: ["SHA256:${id.padEnd(43, 'A').slice(0, 43)}"] }\n    credentials: { username: u, password: p }\n`).join(''),
    'x.yaml',
  );

interface Replica {
  redis: ClusterRedis;
  state: SharedState;
  store: ApprovalStore;
}

const opened: ClusterRedis[] = [];
let redis: TestRedis;
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  for (const r of opened) r.destroy();
  await redis?.close();
});

async function replica(): Promise<Replica> {
  const r = new ClusterRedis({ cluster: { redis: { url: redis.url, passwordFile: '' } } } as never, silent);
  opened.push(r);
  await r.connect();
  const state = new SharedState(r, silent);
  const store = new ApprovalStore(mkdtempSync(path.join(tmpdir(), 'chgw-shared-')), { file: false, maxRejected: 3 });
  return { redis: r, state, store };
}

function once(emitter: EventEmitter, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

test.serial('approvals and rejections: written once, seen by the other replica, one approval per id, newest rejections kept', async (t) => {
  await redis.command('FLUSHALL');
  const a = await replica();
  const b = await replica();
  const writerA = a.state.bindApprovals(a.store);
  b.state.bindApprovals(b.store);
  await a.state.start();
  await b.state.start();

  const changed = once(b.state, 'approvals');
  await writerA.write({ kind: 'approve', approval: approval(fp('A'), 'dev-1') });
  await changed;
  t.deepEqual(
    b.store.approved.map((x) => [x.id, x.fingerprint]),
    [['dev-1', fp('A')]],
  );
  t.is(b.store.approved[0]!.credentials.password, 'p', 'the inline password is shared like approvals.json keeps it');

  // The same id for another key replaces the first approval, on every replica.
  await writerA.write({ kind: 'approve', approval: approval(fp('B'), 'dev-1') });
  await waitFor('dev-1 moved to the second key', () => b.store.approved.length === 1 && b.store.isApproved(fp('B')), { timeoutMs: 5000 });
  t.false(b.store.isApproved(fp('A')));

  const writerB = b.state.bindApprovals(b.store);
  await writerB.write({ kind: 'reject', fingerprint: fp('B'), rejectedAt: new Date().toISOString() });
  await waitFor('the rejection on A', () => a.store.isRejected(fp('B')) && !a.store.isApproved(fp('B')), { timeoutMs: 5000 });
  t.is(await redis.command('HLEN', STATE_KEYS.approvalIds), ':0\r\n', 'the id is free again');
  for (const c of ['C', 'D', 'E']) await writerB.write({ kind: 'reject', fingerprint: fp(c), rejectedAt: new Date().toISOString() });
  await waitFor('three newest rejections', () => a.store.rejectedCount === 3 && a.store.isRejected(fp('E')), { timeoutMs: 5000 });
  t.false(a.store.isRejected(fp('B')), 'the oldest rejection went first');

  // An approval lifts a rejection.
  await writerA.write({ kind: 'approve', approval: approval(fp('C'), 'dev-3') });
  await waitFor('C approved on B', () => b.store.isApproved(fp('C')) && !b.store.isRejected(fp('C')), { timeoutMs: 5000 });
  await a.state.close();
  await b.state.close();
});

test.serial('pending: an unknown key seen on either replica is listed on both, attempts add up, rejected keys are not listed', async (t) => {
  await redis.command('FLUSHALL');
  const a = await replica();
  const b = await replica();
  const rejected = new Set([fp('R')]);
  const pa = a.state.bindPending((f) => rejected.has(f));
  const pb = b.state.bindPending((f) => rejected.has(f));
  pa.record(fp('P'), 'ssh-ed25519', '192.0.2.1');
  pb.record(fp('P'), 'ssh-ed25519', '192.0.2.2');
  pa.recordCertificate(fp('Q'), 'CN=dev', 'CN=ca', '192.0.2.3');
  pa.record(fp('R'), 'ssh-ed25519', '192.0.2.4');
  const both = await waitFor(
    'two pending devices on B',
    async () => {
      const list = await pb.listAll();
      return list.length === 2 && list.find((p) => p.fingerprint === fp('P'))?.attempts === 2 ? list : undefined;
    },
    { timeoutMs: 5000 },
  );
  const p = both.find((e) => e.fingerprint === fp('P'))!;
  t.like(p, { keyType: 'ssh-ed25519', attempts: 2 });
  t.true(['192.0.2.1', '192.0.2.2'].includes(p.remoteAddress), 'the address of the latest attempt');
  t.like(await pb.find(fp('Q')), { keyType: 'x509', subject: 'CN=dev', issuer: 'CN=ca' });
  t.is(await pb.find(fp('R')), undefined);
  pb.forget(fp('Q'));
  await waitFor('Q forgotten everywhere', async () => (await pa.find(fp('Q'))) === undefined, { timeoutMs: 5000 });

  // Redis down: a lookup fails fast with the reason; the list is what this replica saw.
  await redis.stop();
  await waitFor('A to see Redis down', () => !a.redis.up, { timeoutMs: 5000 });
  const err = await t.throwsAsync(pa.find(fp('P')), { instanceOf: GatewayError });
  t.is((err as GatewayError).code, 'GW_ERR_CLUSTER_UNAVAILABLE');
  t.deepEqual((await pa.listAll()).map((p) => p.fingerprint).sort(), [fp('P'), fp('Q')].sort(), 'the local list (Q was seen here)');
  await redis.start();
  await waitFor('Redis back', () => a.redis.up && b.redis.up, { timeoutMs: 10_000 });
});

test.serial('ports: identical on both replicas, never one port for two devices under concurrent rounds, kept while Redis is down', async (t) => {
  await redis.command('FLUSHALL');
  const a = await replica();
  const b = await replica();
  const range: [number, number] = [41000, 41019];
  const pa = a.state.bindPorts(range);
  const pb = b.state.bindPorts(range);
  // 20 rounds at once, the replicas seeing different (growing) inventories.
  const ids = Array.from({ length: 16 }, (_, i) => `d${i}`);
  await Promise.all(ids.map((_, i) => (i % 2 ? pa : pb).assign(inv(...ids.slice(0, i + 1)))));
  const onA = await pa.assign(inv(...ids));
  const onB = await pb.assign(inv(...ids));
  t.deepEqual(Object.fromEntries(onA), Object.fromEntries(onB));
  t.is(new Set(onA.values()).size, ids.length, 'no two devices share a port');
  for (const port of onA.values()) t.true(port >= 41000 && port <= 41019);

  await redis.stop();
  await waitFor('A to see Redis down', () => !a.redis.up, { timeoutMs: 5000 });
  const offline = await pa.assign(inv(...ids, 'newcomer'));
  t.deepEqual(Object.fromEntries([...offline].filter(([id]) => id !== 'newcomer')), Object.fromEntries(onA), 'agreed ports kept');
  t.false(offline.has('newcomer'), 'no new port without Redis');
  await redis.start();
  await waitFor('Redis back', () => a.redis.up, { timeoutMs: 10_000 });
  const back = await pa.assign(inv(...ids, 'newcomer'));
  t.true(back.has('newcomer'));
});

test.serial('Redis restarted empty: the replicas add back what they hold and re-read it; writes meanwhile fail with a clear reason', async (t) => {
  await redis.command('FLUSHALL');
  const a = await replica();
  const b = await replica();
  const writer = a.state.bindApprovals(a.store);
  b.state.bindApprovals(b.store);
  const pa = a.state.bindPorts([42000, 42009]);
  b.state.bindPorts([42000, 42009]);
  await a.state.start();
  await b.state.start();
  await writer.write({ kind: 'approve', approval: approval(fp('A'), 'kept1') });
  await writer.write({ kind: 'reject', fingerprint: fp('X'), rejectedAt: new Date().toISOString() });
  const ports = await pa.assign(inv('kept1', 'kept2'));
  await waitFor('B in step', () => b.store.isApproved(fp('A')) && b.store.isRejected(fp('X')), { timeoutMs: 5000 });

  await redis.stop();
  await waitFor('both to see Redis down', () => !a.redis.up && !b.redis.up, { timeoutMs: 5000 });
  const refused = await t.throwsAsync(writer.write({ kind: 'approve', approval: approval(fp('B'), 'later') }), { instanceOf: GatewayError });
  t.regex(refused!.message, /^approval not recorded: the cluster's Redis is unreachable$/);
  t.true(a.store.isApproved(fp('A')), 'the copy serves reads meanwhile');

  await redis.start(); // empty: no persistence
  await waitFor('the approval back in Redis', async () => (await redis.command('HEXISTS', STATE_KEYS.approvals, fp('A'))) === ':1\r\n', { timeoutMs: 10_000 });
  await waitFor('the rejection back in Redis', async () => (await redis.command('ZSCORE', STATE_KEYS.rejected, fp('X'))).startsWith('$'), { timeoutMs: 10_000 });
  await waitFor('the ports back in Redis', async () => (await redis.command('HLEN', STATE_KEYS.ports)) === ':2\r\n', { timeoutMs: 10_000 });
  t.true(b.store.isApproved(fp('A')) && b.store.isRejected(fp('X')), 'nothing lost on B');
  t.deepEqual(Object.fromEntries(await b.state.bindPorts([42000, 42009]).assign(inv('kept1', 'kept2'))), Object.fromEntries(ports), 'the same ports');
  await a.state.close();
  await b.state.close();
});

test.serial('closing the connection to a frozen Redis gives up after a bounded wait', async (t) => {
  const frozen = await startRedis();
  const r = new ClusterRedis({ cluster: { redis: { url: frozen.url, passwordFile: '' } } } as never, silent);
  await r.connect();
  frozen.signal('SIGSTOP');
  t.teardown(async () => {
    frozen.signal('SIGCONT');
    await frozen.close();
  });
  void r.client.ping().catch(() => undefined); // a command that will never be answered
  const started = Date.now();
  await r.close();
  const took = Date.now() - started;
  t.true(took < 5000, `close() returned after ${took} ms`);
});
