// Cluster mode's shared state end to end: two in-process gateways (replicas on 127.0.0.2 and
// 127.0.0.3) on one real redis-server, real call-home devices (sshd + netconfd) and a real
// manager (ncclient). An unknown device calling A is pending on B; approved on B it logs in
// on A and on B, and its assigned port (northbound.portRange) listens on both; a rejection
// on A holds on B; approvals made at once on both replicas never share a port; Redis
// stopped and started empty mid-test loses nothing.
import anyTest from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fingerprintOfKeyBlob } from '../../src/inventory/identity.js';
import { loadOrCreateHostKey } from '../../src/northbound/hostkey.js';
import { CallHomeDevice, assertNcOk, ensureNetconfd, makeTempDir, requirePeers, runNcclient } from '../e2e/peers/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ScriptedDevice } from '../helpers/ssh-device.js';

const test = requirePeers(anyTest);

interface DeviceView {
  id: string;
  state: string;
  port: number | null;
}

const devices: CallHomeDevice[] = [];
const scripted: ScriptedDevice[] = [];
const gateways: TestGateway[] = [];
let redis: TestRedis | undefined;
test.after.always(async () => {
  for (const g of gateways) await g.close().catch(() => {});
  await Promise.all(devices.map((d) => d.dispose()));
  for (const d of scripted) d.close();
  await redis?.close();
});

/** A run of `n` ports free on every host given. */
async function freeRun(n: number, hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const servers: net.Server[] = [];
    try {
      for (const host of hosts) {
        for (let p = base; p < base + n; p++) {
          const s = net.createServer();
          await new Promise<void>((resolve, reject) => s.once('error', reject).listen(p, host, () => resolve()));
          servers.push(s);
        }
      }
      return base;
    } catch {
      /* taken: try elsewhere */
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error('no run of free ports');
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test.serial('approvals, rejections, pending devices and assigned ports are shared by two replicas; Redis restarted empty loses nothing', async (t) => {
  await ensureNetconfd();
  redis = await startRedis();
  const dir = makeTempDir('chgw-cluster-state');
  const token = 'tok-' + randomBytes(16).toString('hex');
  const tokenFile = path.join(dir, 'admin-token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const userPassword = 'pw-' + randomBytes(12).toString('hex');
  const users = `users:\n  - name: alice\n    password: ${userPassword}\n    devices: ["*"]\n`;
  // One northbound host key for every replica, as cluster mode requires.
  const hostKeyFile = path.join(dir, 'northbound-host-key');
  loadOrCreateHostKey(hostKeyFile, fingerprintOfKeyBlob);
  const base = await freeRun(12, ['127.0.0.2', '127.0.0.3']);
  const replica = async (name: string, host: string) => {
    const g = await startGateway({
      users,
      env: {
        CHGW_CLUSTER_REDIS_URL: redis!.url,
        CHGW_CLUSTER_REPLICAID: name,
        CHGW_CALLHOME_SSH_HOST: host,
        CHGW_NORTHBOUND_HOST: host,
        CHGW_HTTP_HOST: host,
        CHGW_HTTP_ADMINTOKENFILE: tokenFile,
        CHGW_ONBOARDING_SECRETSDIR: dir,
        CHGW_NORTHBOUND_HOSTKEYFILE: hostKeyFile,
        CHGW_NORTHBOUND_PORTRANGE: `${base}-${base + 11}`,
      },
    });
    gateways.push(g);
    return { g, host, api: `http://${host}:${g.httpPort}` };
  };
  const a = await replica('replica-a', '127.0.0.2');
  const b = await replica('replica-b', '127.0.0.3');
  const post = async (r: typeof a, urlPath: string, body?: unknown, method = 'POST') => {
    const res = await fetch(r.api + urlPath, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const pendingOn = async (r: typeof a) => (await r.g.get<Array<{ fingerprint: string; attempts: number }>>('/api/pending')).body;
  const deviceOn = async (r: typeof a, id: string) => (await r.g.get<DeviceView>(`/api/devices/${id}`)).body;

  // 1. An unknown real device calling A is pending on B.
  const device = await CallHomeDevice.create({ name: 'cluster-onboard' });
  devices.push(device);
  device.persistent(a.host, a.g.callhomePort, { pauseMs: 300 });
  await waitFor('the device calling A pending on B', async () => (await pendingOn(b)).some((p) => p.fingerprint === device.hostKeyFingerprint), { timeoutMs: 20_000 });

  // 2. Approved on B: the device calling A logs in there.
  const secret = device.password
    ? { username: device.password.username, passwordFile: writeSecret(dir, 'device-pw', device.password.password) }
    : { username: device.username, privateKeyFile: writeSecret(dir, 'device-key', readFileSync(device.privateKeyFile, 'utf8')) };
  const approved = await post(b, `/api/pending/${encodeURIComponent(device.hostKeyFingerprint)}/approve`, { id: 'shared-1', credentials: secret });
  t.is(approved.status, 201, JSON.stringify(approved.body));
  await waitFor('the approved device logged in on A', async () => (await deviceOn(a, 'shared-1')).state === 'connected', { timeoutMs: 20_000 });
  t.false(
    (await pendingOn(a)).some((p) => p.fingerprint === device.hostKeyFingerprint),
    'no longer pending on A',
  );

  // 3. Its port from portRange is the same on both replicas, and listens on both.
  const portA = await waitFor('a port on A', async () => (await deviceOn(a, 'shared-1')).port, { timeoutMs: 10_000 });
  const portB = await waitFor('a port on B', async () => (await deviceOn(b, 'shared-1')).port, { timeoutMs: 10_000 });
  t.is(portA, portB);
  t.true(portA >= base && portA <= base + 11);
  t.true(await canConnect(a.host, portA));
  t.true(await canConnect(b.host, portB));

  // 4. The device calling B logs in there too; a manager reaches it on B's per-device port.
  await device.stop();
  device.persistent(b.host, b.g.callhomePort, { pauseMs: 300 });
  await waitFor('the approved device logged in on B', async () => (await deviceOn(b, 'shared-1')).state === 'connected', { timeoutMs: 20_000 });
  assertNcOk(
    await runNcclient({ host: b.host, port: portB, username: 'alice', password: userPassword, steps: [{ op: 'get-config', source: 'running' }, { op: 'close-session' }] }),
  );

  // 5. A rejection on A holds on B: a stranger calling B is pending on A, rejected there, and
  //    drops off B's list for good while it keeps calling B.
  const stranger = await CallHomeDevice.create({ name: 'cluster-stranger' });
  devices.push(stranger);
  stranger.persistent(b.host, b.g.callhomePort, { pauseMs: 300 });
  await waitFor('the stranger calling B pending on A', async () => (await pendingOn(a)).some((p) => p.fingerprint === stranger.hostKeyFingerprint), { timeoutMs: 20_000 });
  t.is((await post(a, `/api/pending/${encodeURIComponent(stranger.hostKeyFingerprint)}`, undefined, 'DELETE')).status, 200);
  const refusedBefore = await b.g.metric('callhome_connections_total{transport="ssh",result="unknown_device"}');
  await waitFor('the stranger to call B again', async () => (await b.g.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) >= refusedBefore + 2, {
    timeoutMs: 20_000,
  });
  t.false(
    (await pendingOn(b)).some((p) => p.fingerprint === stranger.hostKeyFingerprint),
    'rejected on A: not pending on B',
  );
  t.false((await pendingOn(a)).some((p) => p.fingerprint === stranger.hostKeyFingerprint));
  await stranger.stop();

  // 6. Approvals made at the same time on both replicas: one port per device, the same on both.
  const many = Array.from({ length: 6 }, () => new ScriptedDevice());
  scripted.push(...many);
  await Promise.all(many.map((d, i) => d.callHome(i % 2 ? a.g.callhomePort : b.g.callhomePort, i % 2 ? a.host : b.host)));
  await waitFor('six scripted devices pending', async () => (await pendingOn(a)).filter((p) => many.some((d) => d.fingerprint === p.fingerprint)).length === many.length, {
    timeoutMs: 20_000,
  });
  const results = await Promise.all(
    many.map((d, i) =>
      post(i % 2 ? a : b, `/api/pending/${encodeURIComponent(d.fingerprint)}/approve`, { id: `burst-${i}`, credentials: { username: d.username, password: d.password } }),
    ),
  );
  t.deepEqual(
    results.map((r) => r.status),
    many.map(() => 201),
  );
  const portsOf = async (r: typeof a) => Object.fromEntries((await r.g.get<DeviceView[]>('/api/devices')).body.filter((d) => d.port !== null).map((d) => [d.id, d.port]));
  const agreed = await waitFor(
    'seven devices with the same ports on both replicas',
    async () => {
      const [pa, pb] = [await portsOf(a), await portsOf(b)];
      return Object.keys(pa).length === 7 && JSON.stringify(pa) === JSON.stringify(pb) ? pa : undefined;
    },
    { timeoutMs: 20_000 },
  );
  t.is(new Set(Object.values(agreed)).size, 7, 'no two devices share a port');

  // 7. Redis stopped: decisions are refused with a clear reason (503), reads and devices carry on.
  const outsider = new ScriptedDevice();
  scripted.push(outsider);
  await outsider.callHome(a.g.callhomePort, a.host);
  await waitFor('the outsider pending', async () => (await pendingOn(b)).some((p) => p.fingerprint === outsider.fingerprint), { timeoutMs: 20_000 });
  await redis.stop();
  await a.g.waitForLog(/Redis unreachable/);
  const refused = await post(a, `/api/pending/${encodeURIComponent(outsider.fingerprint)}/approve`, { id: 'late-1', credentials: { username: 'admin', password: 'x' } });
  t.is(refused.status, 503);
  t.regex(String(refused.body.error), /the cluster's Redis is unreachable/);
  t.is((await deviceOn(b, 'shared-1')).state, 'connected', 'the device stays connected');
  t.is((await deviceOn(a, 'shared-1')).port, portA, 'reads serve the last copy');

  // 8. Redis back, empty: the replicas add back what they hold; nothing is lost.
  await redis.start();
  await a.g.waitForLog(/Redis lost the shared state/, 15_000);
  await waitFor('the seven approvals back in Redis', async () => (await redis!.command('HLEN', 'chgw:approvals')) === ':7\r\n', { timeoutMs: 15_000 });
  t.deepEqual(await portsOf(a), agreed, 'the ports kept on A');
  t.deepEqual(await portsOf(b), agreed, 'the ports kept on B');
  t.is((await deviceOn(b, 'shared-1')).state, 'connected');
  assertNcOk(
    await runNcclient({ host: b.host, port: portB, username: 'alice', password: userPassword, steps: [{ op: 'get-config', source: 'running' }, { op: 'close-session' }] }),
  );
  // Decisions are taken again, and reach the other replica.
  await outsider.callHome(b.g.callhomePort, b.host);
  await waitFor('the outsider pending again', async () => (await pendingOn(a)).some((p) => p.fingerprint === outsider.fingerprint), { timeoutMs: 20_000 });
  t.is((await post(a, `/api/pending/${encodeURIComponent(outsider.fingerprint)}/approve`, { id: 'late-1', credentials: { username: 'admin', password: 'x' } })).status, 201);
  await waitFor('late-1 on B', async () => (await b.g.get<DeviceView[]>('/api/devices')).body.some((d) => d.id === 'late-1'), { timeoutMs: 10_000 });
  // 9. The device approved on B, rejected on A: B drops it and refuses it from then on.
  const refusedOnB = await b.g.metric('callhome_connections_total{transport="ssh",result="unknown_device"}');
  t.is((await post(a, `/api/pending/${encodeURIComponent(device.hostKeyFingerprint)}`, undefined, 'DELETE')).status, 200);
  await waitFor('shared-1 gone from B', async () => (await b.g.get('/api/devices/shared-1')).status === 404, { timeoutMs: 10_000 });
  await waitFor('the device refused by B', async () => (await b.g.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) > refusedOnB, {
    timeoutMs: 20_000,
  });
  t.false(await canConnect(b.host, portB), 'its port is closed on B');
  t.false(
    (await pendingOn(b)).some((p) => p.fingerprint === device.hostKeyFingerprint),
    'and not pending',
  );
  await device.stop();

  // Every log line of both replicas follows docs/LOGS.md (checked by close()).
  for (const g of gateways.splice(0)) await g.close();
});

function writeSecret(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}
