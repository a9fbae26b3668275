// Two in-process replicas (127.0.0.2 and 127.0.0.3, like pods) on one real redis-server,
// with a real device (sshd -i + netconfd): the cluster-wide device view, /api/replicas,
// supersede across replicas, Redis going away and coming back, a graceful leave, and the
// shared host key cluster mode insists on.
import anyTest from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import { runDevices } from '../../src/cli/devices.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ScriptedDevice, inventoryFor } from '../helpers/ssh-device.js';
import { CallHomeDevice, ensureNetconfd, freePort, requirePeers } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);
test.serial.before(() => ensureNetconfd());

interface DeviceView {
  id: string;
  state: string;
  replica: string | null;
  remoteAddress: string | null;
  transport: string;
  connectedAt: string | null;
}

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-cluster-'));
const hostKeyFile = path.join(dir, 'northbound_host_key');
writeFileSync(hostKeyFile, generateUsableEd25519('cluster test').private, { mode: 0o600 });

function inventory(device: CallHomeDevice): string {
  return `devices:\n  - id: edge-1\n    ssh: { hostKeys: ["${device.hostPublicKeyLine}"] }\n    credentials: { username: ${device.username}, privateKeyFile: ${device.privateKeyFile} }\n`;
}

function replica(redis: TestRedis, id: string, host: string, device: CallHomeDevice, env: Record<string, string> = {}): Promise<TestGateway> {
  return startGateway({
    host,
    inventory: inventory(device),
    env: {
      CHGW_CLUSTER_REDIS_URL: redis.url,
      CHGW_CLUSTER_REPLICAID: id,
      CHGW_CLUSTER_LEASETTL: '3',
      CHGW_CLUSTER_PEER_ADVERTISE: `${host}:9835`,
      CHGW_NORTHBOUND_HOSTKEYFILE: hostKeyFile,
      ...env,
    },
  });
}

const view = async (gw: TestGateway, id = 'edge-1') => (await gw.get<DeviceView>(`/api/devices/${id}`)).body;

async function cluster(t: { teardown(fn: () => unknown): void }, name: string) {
  const redis = await startRedis();
  const device = await CallHomeDevice.create({ name });
  const a = await replica(redis, 'replica-a', '127.0.0.2', device);
  const b = await replica(redis, 'replica-b', '127.0.0.3', device);
  t.teardown(async () => {
    await device.stop();
    await Promise.allSettled([a.close(), b.close()]);
    await redis.close();
  });
  return { redis, device, a, b };
}

test('a device on A is listed as connected on replica A by B; /api/replicas and the replicas gauge see both', async (t) => {
  const { device, a, b } = await cluster(t, 'cl-view');
  t.is((await view(b)).state, 'disconnected');
  t.is((await view(b)).replica, null);
  device.callHome('127.0.0.2', a.callhomePort);
  await waitFor('B to see the device', async () => (await view(b)).state === 'connected', { timeoutMs: 15_000 });
  const onB = await view(b);
  const onA = await view(a);
  t.is(onA.replica, 'replica-a');
  t.is(onB.replica, 'replica-a');
  t.is(onB.transport, 'ssh');
  t.is(onB.remoteAddress, onA.remoteAddress);
  t.is(onB.connectedAt, onA.connectedAt);
  t.is(b.gateway.registry.size, 0, 'B holds no connection of its own');
  const listed = (await b.get<DeviceView[]>('/api/devices')).body;
  t.is(listed.find((d) => d.id === 'edge-1')?.state, 'connected');
  // The operator's CLI against B shows the device and where it is.
  let out = '';
  t.is(await runDevices(['list', '--api', `http://127.0.0.3:${b.httpPort}`], { out: (text) => (out += text), env: {} }), 0);
  t.regex(out, /^ID +STATE +REPLICA +TRANSPORT/);
  t.regex(out, /\nedge-1 +connected +replica-a +ssh +127\.0\.0\.1 /);

  await waitFor(
    "the device count in A's lease",
    async () => (await b.get<Array<{ id: string; devices: number }>>('/api/replicas')).body.find((r) => r.id === 'replica-a')?.devices === 1,
    { timeoutMs: 5000 },
  );
  const replicas = (await b.get<Array<{ id: string; peer: string; devices: number; since: string }>>('/api/replicas')).body;
  t.deepEqual(
    replicas.map(({ id, peer, devices }) => ({ id, peer, devices })),
    [
      { id: 'replica-a', peer: '127.0.0.2:9835', devices: 1 },
      { id: 'replica-b', peer: '127.0.0.3:9835', devices: 0 },
    ],
  );
  t.deepEqual((await a.get('/api/replicas')).body, replicas);
  t.is(await a.metric('callhome_cluster_replicas'), 2);
  await waitFor("B's gauge", async () => (await b.metric('callhome_cluster_replicas')) === 2, { timeoutMs: 5000 });
});

test('the device calls B while A holds its older connection: A closes it within 2 s as superseded, never B', async (t) => {
  const { device, a, b } = await cluster(t, 'cl-supersede');
  const first = device.callHome('127.0.0.2', a.callhomePort);
  await waitFor('A as owner', async () => (await view(b)).replica === 'replica-a', { timeoutMs: 15_000 });
  device.callHome('127.0.0.3', b.callhomePort);
  await waitFor('B to hold the device', () => b.gateway.registry.size === 1, { timeoutMs: 15_000 });
  const claimedAt = Date.now();
  await waitFor('A to drop its connection within 2 s', () => a.gateway.registry.size === 0, { timeoutMs: 2000 });
  t.true(Date.now() - claimedAt <= 2000);
  await Promise.race([first.exited, new Promise((r) => setTimeout(r, 5000))]);
  t.true(first.hasExited, 'the device saw A close the older connection');
  t.is(await a.metric('callhome_device_disconnects_total{reason="superseded"}'), 1);
  t.is(await b.metric('callhome_device_disconnects_total{reason="superseded"}'), 0);
  await a.waitForLog(/"reason":"superseded".*device connected to another replica/);
  t.is((await view(a)).replica, 'replica-b');
  t.is((await view(b)).replica, 'replica-b');
  t.is((await view(b)).state, 'connected');
  // And it stays that way: B's connection is the one that lives on.
  await new Promise((r) => setTimeout(r, 500));
  t.is(b.gateway.registry.size, 1);
});

test('Redis away: A keeps its device, B lists it no more; Redis back (empty): A registers it again', async (t) => {
  const { redis, device, a, b } = await cluster(t, 'cl-outage');
  device.callHome('127.0.0.2', a.callhomePort);
  await waitFor('A as owner', async () => (await view(b)).replica === 'replica-a', { timeoutMs: 15_000 });
  await redis.stop();
  await a.waitForLog(/"reason":"cluster_unavailable".*Redis unreachable/, 5000);
  t.is((await view(a)).state, 'connected', 'A serves its device without Redis');
  t.is((await view(a)).replica, 'replica-a');
  t.is((await view(b)).state, 'disconnected');
  t.is((await b.get('/api/replicas')).status, 503);
  await redis.start();
  await waitFor('the device registered again', async () => (await view(b)).replica === 'replica-a', { timeoutMs: 10_000 });
  t.is(a.gateway.registry.size, 1, 'no device lost');
  await a.waitForLog(/registered the devices held here again/);
});

test('a graceful close of A releases its devices and its lease at once', async (t) => {
  const { device, a, b } = await cluster(t, 'cl-leave');
  device.callHome('127.0.0.2', a.callhomePort);
  await waitFor('A as owner', async () => (await view(b)).replica === 'replica-a', { timeoutMs: 15_000 });
  await a.close();
  t.is((await view(b)).state, 'disconnected');
  t.deepEqual(
    (await b.get<Array<{ id: string }>>('/api/replicas')).body.map((r) => r.id),
    ['replica-b'],
  );
});

test('cluster mode without the northbound host key file is refused: one line, exit 2, no key generated', async (t) => {
  const missing = path.join(dir, 'no-such-key');
  const err = await t.throwsAsync(startGateway({ env: { CHGW_CLUSTER_REDIS_URL: 'redis://127.0.0.1:1/0', CHGW_NORTHBOUND_HOSTKEYFILE: missing } }));
  t.is((err as { code?: string }).code, 'GW_ERR_CONFIG');
  t.regex(err!.message, /cluster mode needs northbound\.hostKeyFile.*no-such-key does not exist/);

  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  writeFileSync(path.join(dir, 'devices.yaml'), 'devices: []\n');
  writeFileSync(path.join(dir, 'users.yaml'), 'users: []\n');
  const r = spawnSync(process.execPath, [cli, 'run'], {
    encoding: 'utf8',
    timeout: 20_000,
    env: {
      PATH: process.env.PATH,
      CHGW_STATEDIR: path.join(dir, 'state'),
      CHGW_INVENTORY_FILE: path.join(dir, 'devices.yaml'),
      CHGW_USERS_FILE: path.join(dir, 'users.yaml'),
      CHGW_HTTP_PORT: '0',
      CHGW_NORTHBOUND_PORT: '0',
      CHGW_CALLHOME_SSH_PORT: '0',
      CHGW_CALLHOME_TLS_PORT: '0',
      CHGW_CLUSTER_REDIS_URL: 'redis://127.0.0.1:1/0',
    },
  });
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /cluster mode needs northbound\.hostKeyFile/);
  t.false(spawnSync('test', ['-e', path.join(dir, 'state', 'northbound_host_key')]).status === 0, 'no per-replica key was generated');
});

test('Redis unreachable at start: the start fails with one reason within seconds, not a hang', async (t) => {
  const port = await freePort();
  const started = Date.now();
  const err = await t.throwsAsync(startGateway({ env: { CHGW_CLUSTER_REDIS_URL: `redis://127.0.0.1:${port}/0`, CHGW_NORTHBOUND_HOSTKEYFILE: hostKeyFile } }));
  t.is((err as { code?: string }).code, 'GW_ERR_CLUSTER_UNAVAILABLE');
  t.regex(err!.message, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0: no connection within 10 s \\(connect ECONNREFUSED`));
  t.true(Date.now() - started < 25_000);
});

test('standalone: /api/replicas is this one replica, the gauge says 1, device views carry no replica', async (t) => {
  const gw = await startGateway({ inventory: inventoryFor([{ id: 'solo-1', device: new ScriptedDevice() }]), env: { CHGW_CLUSTER_REPLICAID: 'solo' } });
  t.teardown(() => gw.close());
  const replicas = (await gw.get<Array<{ id: string; peer: string; devices: number; since: string }>>('/api/replicas')).body;
  t.deepEqual(
    replicas.map(({ id, peer, devices }) => ({ id, peer, devices })),
    [{ id: 'solo', peer: '', devices: 0 }],
  );
  t.is(await gw.metric('callhome_cluster_replicas'), 1);
  const device = (await gw.get<Record<string, unknown>>('/api/devices/solo-1')).body;
  t.is(device.state, 'disconnected');
  t.false('replica' in device);
});
