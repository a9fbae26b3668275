// Cluster mode with real parts: three gateway processes on 127.0.0.2-4 (same ports, like
// pods) sharing a real redis-server; real devices (OpenSSH sshd -i + netconfd) call one
// replica, real managers (ncclient) reach them through another, which forwards the session
// over mutual TLS to the owner. Also: the cluster-wide views, approvals made on one replica
// honoured on another, and a manager waiting on one replica for a device that calls another.
import anyTest from 'ava';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import {
  CallHomeDevice,
  assertNcOk,
  describeNcResult,
  generateKeyPair,
  interfaceConfig,
  interfaceDeleteConfig,
  interfaceFilter,
  lockedEditSteps,
  makeTempDir,
  requirePeers,
  runNcclient,
  uniqueIfName,
  waitFor,
  type KeyPair,
  type NcStep,
} from './peers/index.js';
import { TestCluster, type ClusterPorts, type ReplicaView } from '../helpers/cluster.js';

const test = requirePeers(anyTest);

let cluster: TestCluster;
let manager: KeyPair;
const devices: Record<string, CallHomeDevice> = {};
const NAMES = ['shared', 'ported', 'waited'] as const;

const entry = (id: string, d: CallHomeDevice, port?: number) =>
  `  - id: ${id}\n    ssh: { hostKeys: ["${d.hostKeyFingerprint}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n` +
  (port !== undefined ? `    port: ${port}\n` : '');

test.before(async () => {
  for (const n of NAMES) devices[n] = await CallHomeDevice.create({ name: `cl-${n}`, logLevel: 'INFO' });
  manager = await generateKeyPair(path.join(makeTempDir('chgw-cluster-mgr-'), 'id_ed25519'), 'alice@cluster');
  cluster = await TestCluster.start({
    replicas: 3,
    portRange: 6,
    waitForDevice: 15,
    inventory: (ports: ClusterPorts) => 'devices:\n' + entry('shared', devices.shared!) + entry('ported', devices.ported!, ports.range![0]) + entry('waited', devices.waited!),
    users: `users:\n  - name: alice\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`,
  });
  // Both devices call r1; managers come in through r2 and r3.
  const r1 = cluster.replica('r1');
  devices.shared!.persistent(r1.host, cluster.ports.callhome);
  devices.ported!.persistent(r1.host, cluster.ports.callhome);
  for (const id of ['shared', 'ported']) {
    const owner = await cluster.waitForOwner(id);
    if (owner.id !== 'r1') throw new Error(`${id} is owned by ${owner.id}, not r1`);
  }
});

test.after.always(async () => {
  await Promise.all(Object.values(devices).map((d) => d.dispose()));
  await cluster?.close();
});

const nc = (host: string, port: number, username: string, steps: NcStep[], more: Partial<Parameters<typeof runNcclient>[0]> = {}) =>
  runNcclient({ host, port, username, keyFile: manager.privateKeyFile, timeout: 20, steps, ...more });

function fullCycle(name: string): NcStep[] {
  return [
    ...lockedEditSteps(interfaceConfig(name, 'set through another replica'), 20), // lock, edit-config, commit, unlock
    { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
    ...lockedEditSteps(interfaceDeleteConfig(name), 20),
    { op: 'close-session' },
  ];
}

function assertFullCycle(t: import('ava').ExecutionContext, r: Awaited<ReturnType<typeof nc>>, name: string): void {
  t.log(describeNcResult(r));
  assertNcOk(r);
  t.deepEqual(
    r.steps.map((s) => s.op),
    ['lock', 'edit-config', 'commit', 'unlock', 'get-config', 'lock', 'edit-config', 'commit', 'unlock', 'close-session'],
  );
  t.regex(r.steps[4]!.reply!, new RegExp(`<name>${name}</name>[\\s\\S]*<description>set through another replica</description>`));
}

test.serial('every replica lists the three live replicas and names r1 as the owner of the devices it holds', async (t) => {
  // A replica's device count is refreshed with its lease.
  // So is the callhome_cluster_replicas gauge: at each replica's next heartbeat.
  await waitFor('r1 counted with two devices, and three replicas seen, everywhere', async () => {
    for (const r of cluster.replicas) {
      if ((await r.get<ReplicaView[]>('/api/replicas')).body.find((x) => x.id === 'r1')?.devices !== 2) return false;
      if ((await r.metric('callhome_cluster_replicas')) !== 3) return false;
    }
    return true;
  });
  for (const r of cluster.replicas) {
    const { status, body } = await r.get<ReplicaView[]>('/api/replicas');
    t.is(status, 200);
    t.deepEqual(
      body.map((x) => [x.id, x.peer]).sort(),
      cluster.replicas.map((x) => [x.id, x.peerAddress]),
      `${r.id}: ${JSON.stringify(body)}`,
    );
    for (const id of ['shared', 'ported']) t.like(await r.device(id), { id, state: 'connected', replica: 'r1' });
    t.like(await r.device('ported'), { port: cluster.ports.range![0] });
    t.like(await r.device('waited'), { state: 'disconnected' });
    t.is(await r.metric('callhome_cluster_replicas'), 3);
  }
  // A device without a port gets one from northbound.portRange: the same one on every replica.
  const ports = await Promise.all(cluster.replicas.map(async (r) => (await r.device('shared'))?.port));
  t.log(`shared's assigned port on r1..r3: ${ports.join(', ')}`);
  t.true(typeof ports[0] === 'number' && ports[0] > cluster.ports.range![0] && ports[0] <= cluster.ports.range![1], String(ports[0]));
  t.deepEqual(new Set(ports).size, 1);
});

test.serial('a forwarded full cycle (lock, edit-config, commit, unlock) on the shared port of another replica', async (t) => {
  const [r1, r2] = [cluster.replica('r1'), cluster.replica('r2')];
  const outBefore = await r2.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'out' });
  const inBefore = await r1.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'in' });
  const meteredBefore = await r2.metricSum('callhome_client_sessions_total');
  const name = uniqueIfName('clfwd');
  const r = await nc(r2.host, cluster.ports.northbound, 'alice@shared', fullCycle(name));
  assertFullCycle(t, r, name);
  t.is(await r2.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'out' }), outBefore + 1, 'r2 forwarded it');
  t.is(await r1.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'in' }), inBefore + 1, 'r1 served it');
  // Metering on the manager's replica, as for a local device.
  t.is(await r2.metricSum('callhome_client_sessions_total'), meteredBefore + 1);
});

test.serial("a forwarded full cycle on the device's own port, which every replica listens on", async (t) => {
  const r3 = cluster.replica('r3');
  const port = cluster.ports.range![0];
  const name = uniqueIfName('clport');
  const r = await nc(r3.host, port, 'alice', fullCycle(name));
  assertFullCycle(t, r, name);
  t.like(await r3.device('ported'), { replica: 'r1', port });
});

test.serial('three concurrent forwarded sessions on one device, from two replicas', async (t) => {
  const [r2, r3] = [cluster.replica('r2'), cluster.replica('r3')];
  let connected = 0;
  let allConnected!: () => void;
  const together = new Promise<void>((resolve) => (allConnected = resolve));
  const steps: NcStep[] = [{ op: 'get-config', source: 'running' }, { op: 'sleep', seconds: 1.5 }, { op: 'get', filter: interfaceFilter('lo') }, { op: 'close-session' }];
  const onEvent = (e: { type: string }) => {
    if (e.type === 'connected' && ++connected === 3) allConnected();
  };
  const runs = [r2, r3, r2].map((r) => nc(r.host, cluster.ports.northbound, 'alice@shared', steps, { onEvent }));
  // All three were open at once: each sleeps 1.5 s between its RPCs.
  const all = Promise.all(runs);
  const sessionsSeen = await Promise.race([
    together.then(() =>
      waitFor('three sessions on the owner', async () => ((await cluster.replica('r1').device('shared'))?.sessions ?? 0) >= 3, { timeoutMs: 3000 }).catch(() => false),
    ),
    all.then(() => false),
  ]);
  const results = await all;
  for (const r of results) {
    t.log(describeNcResult(r));
    assertNcOk(r);
    t.regex(r.steps[0]!.reply!, /<rpc-reply[\s\S]*<data/);
  }
  t.is(new Set(results.map((r) => r.sessionId)).size, 3, 'three distinct NETCONF sessions on the device');
  t.true(sessionsSeen, 'the owner carried three client sessions at once');
});

test.serial('an unknown device approved on one replica is accepted by another and reachable from a third', async (t) => {
  const [r1, r2, r3] = [cluster.replica('r1'), cluster.replica('r2'), cluster.replica('r3')];
  const newbie = await CallHomeDevice.create({ name: 'cl-newbie', logLevel: 'INFO' });
  try {
    const first = newbie.callHome(r1.host, cluster.ports.callhome);
    await first.exited; // refused before any credential: an unknown key
    const pending = await waitFor(
      'the unknown device in /api/pending of r2',
      async () => ((await r2.get<Array<{ fingerprint: string }>>('/api/pending')).body ?? []).find((p) => p.fingerprint === newbie.hostKeyFingerprint),
      { timeoutMs: 5000 },
    );
    t.truthy(pending, 'the pending list is shared');
    const keyFile = path.join(cluster.secretsDir, 'newbie.key');
    copyFileSync(newbie.privateKeyFile, keyFile);
    const approved = await r2.post(`/api/pending/${encodeURIComponent(newbie.hostKeyFingerprint)}/approve`, {
      id: 'newbie',
      credentials: { username: newbie.username, privateKeyFile: keyFile },
    });
    t.is(approved.status, 201, JSON.stringify(approved.body));
    newbie.persistent(r1.host, cluster.ports.callhome, { pauseMs: 200 });
    const owner = await cluster.waitForOwner('newbie');
    t.is(owner.id, 'r1', 'r1 honoured the approval made on r2');
    const r = await nc(r3.host, cluster.ports.northbound, 'alice@newbie', [{ op: 'get-config', source: 'running' }, { op: 'close-session' }]);
    t.log(describeNcResult(r));
    assertNcOk(r);
    for (const rep of cluster.replicas)
      t.false(
        ((await rep.get<Array<{ fingerprint: string }>>('/api/pending')).body ?? []).some((p) => p.fingerprint === newbie.hostKeyFingerprint),
        `${rep.id}: no longer pending`,
      );
  } finally {
    await newbie.dispose();
  }
});

test.serial('a manager waiting on one replica gets the device when it calls another', async (t) => {
  const [r1, r3] = [cluster.replica('r1'), cluster.replica('r3')];
  const device = devices.waited!;
  const started = Date.now();
  const waiting = nc(r3.host, cluster.ports.northbound, 'alice@waited', [{ op: 'get-config', source: 'running' }, { op: 'close-session' }], { timeout: 30 });
  await new Promise((r) => setTimeout(r, 1500));
  device.persistent(r1.host, cluster.ports.callhome);
  const r = await waiting;
  t.log(describeNcResult(r), `${Date.now() - started} ms`);
  assertNcOk(r);
  t.true(Date.now() - started >= 1500, 'the session waited for the device');
  t.like(await r3.device('waited'), { replica: 'r1' });
});
