// A deployment's shape: HAProxy (Debian) as the L4 load balancer in front of three gateway
// processes for both call home and northbound. Devices and managers know only HAProxy's
// address; whichever replica a manager lands on reaches whichever replica holds the device.
// Killing a replica takes it out of the rotation; its device calls HAProxy again and is
// reachable again through it.
import anyTest from 'ava';
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
  type KeyPair,
  type NcStep,
} from './peers/index.js';
import { TestCluster } from '../helpers/cluster.js';
import { startHaproxy, type TestHaproxy } from '../helpers/haproxy.js';
import { RoamingDialer } from '../helpers/roaming-device.js';

const test = requirePeers(anyTest);
const LEASE_TTL = 3;

let cluster: TestCluster;
let haproxy: TestHaproxy;
let manager: KeyPair;
const devices: CallHomeDevice[] = [];
const dialers: RoamingDialer[] = [];

test.before(async () => {
  for (const n of ['lb-1', 'lb-2']) devices.push(await CallHomeDevice.create({ name: n, logLevel: 'INFO' }));
  manager = await generateKeyPair(path.join(makeTempDir('chgw-lb-mgr-'), 'id_ed25519'), 'alice@lb');
  cluster = await TestCluster.start({
    replicas: 3,
    leaseTtl: LEASE_TTL,
    firstAddress: 8,
    inventory:
      'devices:\n' +
      devices
        .map(
          (d, i) => `  - id: lb-${i + 1}\n    ssh: { hostKeys: ["${d.hostKeyFingerprint}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n`,
        )
        .join(''),
    users: `users:\n  - name: alice\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`,
  });
  haproxy = await startHaproxy(
    cluster.replicas.map((r) => ({ name: r.id, host: r.host, callhome: cluster.ports.callhome, northbound: cluster.ports.northbound, http: cluster.ports.http })),
  );
  // Devices know one address: HAProxy's.
  for (const d of devices) dialers.push(new RoamingDialer(d, [{ host: haproxy.host, port: haproxy.callhomePort }], { pauseMs: 300 }));
});

test.after.always(async () => {
  await Promise.all(dialers.map((d) => d.stop()));
  await Promise.all(devices.map((d) => d.dispose()));
  await haproxy?.stop();
  await cluster?.close();
});

const viaLb = (device: string, steps: NcStep[]) =>
  runNcclient({ host: haproxy.host, port: haproxy.northboundPort, username: `alice@${device}`, keyFile: manager.privateKeyFile, timeout: 20, steps });

test.serial('devices and managers only know HAProxy: full cycles and reads reach both devices whichever replica each side lands on', async (t) => {
  const owners = [await cluster.waitForOwner('lb-1'), await cluster.waitForOwner('lb-2')];
  t.log(`owners: lb-1 on ${owners[0]!.id}, lb-2 on ${owners[1]!.id}`);
  const forwardedBefore = await Promise.all(cluster.replicas.map((r) => r.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'out' })));
  const name = uniqueIfName('cllb');
  const cycle = await viaLb('lb-1', [
    ...lockedEditSteps(interfaceConfig(name, 'through the load balancer'), 20),
    { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
    ...lockedEditSteps(interfaceDeleteConfig(name), 20),
    { op: 'close-session' },
  ]);
  t.log(describeNcResult(cycle));
  assertNcOk(cycle);
  t.regex(cycle.steps[4]!.reply!, /through the load balancer/);
  // Round robin over three replicas: six sessions land on every replica, so some are forwarded.
  const reads = await Promise.all(Array.from({ length: 6 }, (_, i) => viaLb(`lb-${(i % 2) + 1}`, [{ op: 'get-config', source: 'running' }, { op: 'close-session' }])));
  for (const r of reads) assertNcOk(r);
  const forwardedAfter = await Promise.all(cluster.replicas.map((r) => r.metricSum('callhome_cluster_forwarded_sessions_total', { direction: 'out' })));
  const forwarded = forwardedAfter.reduce((s, v, i) => s + v - forwardedBefore[i]!, 0);
  t.log(`${forwarded} of 7 sessions were forwarded between replicas`);
  t.true(forwarded >= 2, `${forwarded}`);
});

test.serial('the owner killed (-9): HAProxy drops it, the device calls again through HAProxy and managers reach it through HAProxy', async (t) => {
  const owner = await cluster.waitForOwner('lb-1');
  const killedAt = Date.now();
  await owner.kill();
  const next = await cluster.waitForOwner('lb-1', { not: owner.id, timeoutMs: LEASE_TTL * 1000 + 5000 });
  t.log(`lb-1 moved from ${owner.id} to ${next.id} in ${Date.now() - killedAt} ms`);
  // Every manager session through HAProxy now reaches it (none lands on the dead replica).
  for (let i = 0; i < 4; i++) {
    const r = await viaLb('lb-1', [{ op: 'get-config', source: 'running' }, { op: 'close-session' }]);
    t.true(r.ok, describeNcResult(r));
  }
  t.log(`reachable again ${Date.now() - killedAt} ms after kill -9`);
  await cluster.waitForOwner('lb-2', { not: owner.id, timeoutMs: LEASE_TTL * 1000 + 5000 });
});
