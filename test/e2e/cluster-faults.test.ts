// Cluster faults with real parts (three gateway processes on 127.0.0.2-4, a real
// redis-server, real sshd+netconfd devices, ncclient managers): a frozen owner superseded
// (SIGSTOP), Redis taken away and brought back, a replica drained (SIGTERM) and one killed
// (-9). Devices are persistent and have every replica as an endpoint, dialling the next one
// when a connection ends (RoamingDialer), as RFC 8071 devices with an endpoint list do.
import anyTest from 'ava';
import path from 'node:path';
import {
  CallHomeDevice,
  assertNcOk,
  describeNcResult,
  generateKeyPair,
  makeTempDir,
  requirePeers,
  runNcclient,
  runOpenSshNetconf,
  sleep,
  waitFor,
  type KeyPair,
  type NcStep,
} from './peers/index.js';
import { TestCluster, type Replica } from '../helpers/cluster.js';
import { RoamingDialer } from '../helpers/roaming-device.js';

const test = requirePeers(anyTest);
const LEASE_TTL = 3;
const NAMES = ['frozen', 'local', 'remote', 'drained', 'killed', 'silent'] as const;
type Name = (typeof NAMES)[number];

let cluster: TestCluster;
let manager: KeyPair;
const devices = {} as Record<Name, CallHomeDevice>;
const dialers: RoamingDialer[] = [];

const entry = (id: string, d: CallHomeDevice) =>
  `  - id: ${id}\n    ssh: { hostKeys: ["${d.hostKeyFingerprint}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n`;

test.before(async () => {
  for (const n of NAMES) devices[n] = await CallHomeDevice.create({ name: `clf-${n}`, logLevel: 'INFO' });
  manager = await generateKeyPair(path.join(makeTempDir('chgw-clf-mgr-'), 'id_ed25519'), 'alice@faults');
  cluster = await TestCluster.start({
    replicas: 3,
    leaseTtl: LEASE_TTL,
    firstAddress: 5,
    inventory: 'devices:\n' + NAMES.map((n) => entry(n, devices[n])).join(''),
    users: `users:\n  - name: alice\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`,
  });
});

test.after.always(async () => {
  await Promise.all(dialers.map((d) => d.stop()));
  await Promise.all(Object.values(devices).map((d) => d.dispose()));
  await cluster?.close();
});

const endpoints = () => cluster.replicas.map((r) => ({ host: r.host, port: cluster.ports.callhome }));

/** A persistent device whose first call goes to `first`, then round the replicas. */
function roam(name: Name, first: Replica): RoamingDialer {
  const d = new RoamingDialer(devices[name], endpoints(), { pauseMs: 300, start: first.index });
  dialers.push(d);
  return d;
}

const nc = (r: Replica, device: string, steps: NcStep[] = [{ op: 'get-config', source: 'running' }, { op: 'close-session' }]) =>
  runNcclient({ host: r.host, port: cluster.ports.northbound, username: `alice@${device}`, keyFile: manager.privateKeyFile, timeout: 15, steps });

async function reachable(t: import('ava').ExecutionContext, r: Replica, device: string): Promise<void> {
  const res = await nc(r, device);
  t.log(`${device} via ${r.id}: ${describeNcResult(res)}`);
  assertNcOk(res);
}

test.serial('supersede: the device calls r2 while r1, its owner, is frozen; r1 lets go within 2 s of waking and never takes the record back', async (t) => {
  const [r1, r2, r3] = [cluster.replica('r1'), cluster.replica('r2'), cluster.replica('r3')];
  const device = devices.frozen;
  const old = device.callHome(r1.host, cluster.ports.callhome);
  t.is((await cluster.waitForOwner('frozen')).id, 'r1');
  const oldEpochLine = r1.logs.length;

  r1.freeze();
  let thawedAt = 0;
  try {
    const fresh = device.callHome(r2.host, cluster.ports.callhome);
    const owner = await cluster.waitForOwner('frozen', { ask: [r2, r3], not: 'r1', timeoutMs: 10_000 });
    t.is(owner.id, 'r2', 'the newer connection owns the device while r1 sleeps');
    await reachable(t, r3, 'frozen'); // forwarded to r2, not to the frozen r1
    t.false(old.hasExited, 'the old connection is still open while r1 is frozen');
    t.false(fresh.hasExited);
  } finally {
    r1.thaw();
    thawedAt = Date.now();
  }
  await Promise.race([old.exited, sleep(4000)]);
  const releasedMs = Date.now() - thawedAt;
  t.true(old.hasExited, 'r1 closed its stale connection');
  t.log(`r1 released the stale connection ${releasedMs} ms after SIGCONT`);
  t.true(releasedMs <= 2000, `${releasedMs} ms`);
  await r1.waitForLog(/GW_ERR_SUPERSEDED/, { since: oldEpochLine, timeoutMs: 1000 });
  // For two lease periods, every replica (r1 included) keeps naming r2.
  const until = Date.now() + 2 * LEASE_TTL * 1000;
  while (Date.now() < until) {
    for (const r of cluster.replicas) t.like(await r.device('frozen'), { state: 'connected', replica: 'r2' }, `${r.id} at +${Date.now() - thawedAt} ms`);
    await sleep(250);
  }
  await reachable(t, r1, 'frozen');
  await device.stop();
});

test.serial('Redis stopped and started: local devices and managers keep working, remote lookups fail fast with a reason, everything re-registers', async (t) => {
  const [r1, r2] = [cluster.replica('r1'), cluster.replica('r2')];
  roam('local', r1);
  roam('remote', r2);
  t.is((await cluster.waitForOwner('local')).id, 'r1');
  t.is((await cluster.waitForOwner('remote')).id, 'r2');

  await cluster.redis.stop();
  try {
    await sleep(500);
    await reachable(t, r1, 'local'); // its own device, its own manager
    await reachable(t, r2, 'remote');
    // OpenSSH prints the gateway's one-line reason from the channel's stderr.
    const started = Date.now();
    const refused = await runOpenSshNetconf({ host: r1.host, port: cluster.ports.northbound, username: 'alice@remote', identityFile: manager.privateKeyFile, timeoutMs: 15_000 });
    const ms = Date.now() - started;
    t.log(`remote lookup during the outage: exit ${refused.code}, ${refused.stderr.trim()} (${ms} ms)`);
    t.false(refused.timedOut);
    t.is(refused.replies.length, 0);
    t.regex(refused.stderr, /callhome-gateway: .*Redis/, 'the manager is told why');
    t.true(ms < 5000, `failed fast (${ms} ms)`);
    // Devices stay connected on the replicas holding them.
    t.like(await r1.device('local'), { state: 'connected' });
  } finally {
    await cluster.redis.start();
  }
  // An empty Redis: every replica re-registers itself and what it holds.
  await cluster.waitForReplicas(3, 15_000);
  t.is((await cluster.waitForOwner('local', { timeoutMs: 15_000 })).id, 'r1', 'r1 re-registered its device');
  t.is((await cluster.waitForOwner('remote', { timeoutMs: 15_000 })).id, 'r2', 'r2 re-registered its device');
  await reachable(t, r1, 'remote');
  await reachable(t, r2, 'local');
});

test.serial('SIGTERM on a replica: its devices get a clean close and come back through another replica', async (t) => {
  const r3 = cluster.replica('r3');
  const dialer = roam('drained', r3);
  t.is((await cluster.waitForOwner('drained')).id, 'r3');
  try {
    const code = await r3.stop();
    t.is(code, 0, 'a clean drain');
    const owner = await cluster.waitForOwner('drained', { not: 'r3', timeoutMs: 10_000 });
    t.log(`drained device now on ${owner.id}; dialled ${dialer.dialled.map((e) => e.host).join(' → ')}`);
    await reachable(t, cluster.replica(owner.id === 'r1' ? 'r2' : 'r1'), 'drained');
  } finally {
    if (!r3.alive) await r3.start();
  }
  await cluster.waitForReplicas(3);
});

test.serial(
  'kill -9 of the owner: the device is back on another replica within leaseTtl + its redial; a device that does not redial stops being owned within leaseTtl',
  async (t) => {
    const r2 = cluster.replica('r2');
    roam('killed', r2);
    const silent = devices.silent;
    silent.callHome(r2.host, cluster.ports.callhome); // calls once, never again
    t.is((await cluster.waitForOwner('killed')).id, 'r2');
    t.is((await cluster.waitForOwner('silent')).id, 'r2');

    const killedAt = Date.now();
    await r2.kill();
    const owner = await cluster.waitForOwner('killed', { not: 'r2', timeoutMs: LEASE_TTL * 1000 + 5000 });
    const backMs = Date.now() - killedAt;
    t.log(`owner ${owner.id} after ${backMs} ms`);
    await reachable(
      t,
      cluster.live.find((r) => r !== owner)!,
      'killed',
    );
    const reachableMs = Date.now() - killedAt;
    t.log(`reachable through another replica ${reachableMs} ms after kill -9 (leaseTtl ${LEASE_TTL} s, redial pause 0.3 s)`);
    t.true(reachableMs < LEASE_TTL * 1000 + 5000, `${reachableMs} ms`);

    // The silent device's record named a dead replica: gone once r2's lease expired.
    await waitFor(
      'silent to be shown disconnected everywhere',
      async () => {
        const views = await Promise.all(cluster.live.map((r) => r.device('silent')));
        return views.every((v) => v?.state === 'disconnected' && !v.replica);
      },
      { timeoutMs: LEASE_TTL * 1000 + 2000, intervalMs: 100 },
    );
    const goneMs = Date.now() - killedAt;
    t.log(`silent no longer owned ${goneMs} ms after kill -9`);
    t.true(goneMs <= LEASE_TTL * 1000 + 2000);
    for (const r of cluster.live)
      t.false(
        (await r.get<Array<{ id: string }>>('/api/replicas')).body.some((x) => x.id === 'r2'),
        `${r.id} no longer lists r2`,
      );
  },
);
