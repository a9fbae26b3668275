// Forwarded sessions with real parts: a real redis-server, two gateways in cluster mode on
// 127.0.0.2 (gw-a) and 127.0.0.3 (gw-b), real devices (OpenSSH sshd + netconfd) calling
// gw-a, and real managers (ncclient, OpenSSH) on gw-b: the session crosses the peer stream.
import anyTest from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import {
  CAP_BASE_11,
  CallHomeDevice,
  IF_NS,
  TlsCallHomeDevice,
  assertNcOk,
  describeNcResult,
  ensureNetconfd,
  generateKeyPair,
  interfaceConfig,
  interfaceDeleteConfig,
  interfaceFilter,
  lockedEditSteps,
  makeTempDir,
  requirePeers,
  runNcclient,
  runOpenSshNetconf,
  uniqueIfName,
  type NcJob,
} from '../e2e/peers/index.js';
import { issueDeviceFiles } from '../../src/tls/certs.js';
import { FrameType, encodeFrame } from '../../src/cluster/peer-frames.js';
import { HANDSHAKE_SECONDS, MAX_PENDING } from '../../src/cluster/peer-server.js';
import { HOSTS, commonFreePort, startCluster, type TestCluster } from './helpers.js';

const test = requirePeers(anyTest);

type DeviceView = { id: string; state: string; replica?: string | null; sessions: number };
type SessionView = { id: string; user: string; device: string; replica: string; bytesToClient: number };

let cluster: TestCluster;
let a: TestGateway;
let b: TestGateway;
let edge1: CallHomeDevice;
let late: CallHomeDevice;
let tlsDevice: TlsCallHomeDevice;
let edge1Port: number;
let manager: { privateKeyFile: string; publicKeyLine: string };
const MAX_PER_DEVICE = 3;

test.before(async () => {
  await ensureNetconfd();
  [edge1, late] = await Promise.all(['fwd-edge-1', 'fwd-late'].map((name) => CallHomeDevice.create({ name })));
  manager = await generateKeyPair(path.join(makeTempDir('chgw-fwd-manager'), 'id_ed25519'), 'alice@laptop');
  edge1Port = await commonFreePort(HOSTS);
  const device = (id: string, d: CallHomeDevice, extra = '') =>
    `  - id: ${id}\n    ssh: { hostKeys: ["${d.hostPublicKeyLine}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n${extra}`;
  // A TLS device: one NETCONF session, which its owner lends to one client at a time.
  const tlsDir = makeTempDir('chgw-fwd-tls');
  const tlsCert = { cert: path.join(tlsDir, 'tls-1.crt'), key: path.join(tlsDir, 'tls-1.key') };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tlsCert.key, '-out', tlsCert.cert, '-days', '2', '-subj', '/CN=tls-1'], { stdio: 'ignore' });
  tlsDevice = await TlsCallHomeDevice.create({ name: 'fwd-tls-1', certFile: tlsCert.cert, keyFile: tlsCert.key });
  const tlsPin = new X509Certificate(readFileSync(tlsCert.cert)).fingerprint256;
  const inventory = `devices:\n${device('edge-1', edge1, `    port: ${edge1Port}\n`)}${device('edge-late', late)}  - id: tls-1\n    tls: { fingerprints: ["${tlsPin}"] }\n`;
  const users = `users:
  - name: alice
    password: alice-pw
    authorizedKeys: ["${manager.publicKeyLine}"]
    devices: ["*"]
`;
  const caps = { CHGW_NORTHBOUND_MAXSESSIONSPERDEVICE: String(MAX_PER_DEVICE) };
  // gw-b holds managers for a device that is not connected yet (waitForDevice across replicas).
  cluster = await startCluster({ inventory, users, env: [caps, { ...caps, CHGW_NORTHBOUND_WAITFORDEVICE: '20' }] });
  [a, b] = cluster.gateways as [TestGateway, TestGateway];
  edge1.persistent(HOSTS[0], a.callhomePort, { pauseMs: 300 });
  await waitFor('gw-b to see edge-1 on gw-a', async () => (await b.get<DeviceView>('/api/devices/edge-1')).body.replica === 'gw-a', { timeoutMs: 30_000 });
});

test.after.always(async () => {
  await Promise.all([edge1, late, tlsDevice].map((d) => d?.dispose()));
  await cluster?.close();
});

const viaB = (username: string, extra: Partial<NcJob> = {}): NcJob => ({ host: HOSTS[1], port: b.northboundPort, username, password: 'alice-pw', steps: [], ...extra });
const forwarded = (gw: TestGateway, direction: 'in' | 'out', result = 'ok') => gw.metric(`callhome_cluster_forwarded_sessions_total{direction="${direction}",result="${result}"}`);

test.serial('ncclient on gw-b, device on gw-a: lock, edit-config, commit, unlock forwarded; metered once, on gw-b', async (t) => {
  const name = uniqueIfName('fwd');
  const before = {
    out: await forwarded(b, 'out'),
    in: await forwarded(a, 'in'),
    aMessages: await a.metric('callhome_netconf_messages_total{direction="to_device"}'),
    bMessages: await b.metric('callhome_netconf_messages_total{direction="to_device"}'),
    bCommits: await b.metric('callhome_rpc_duration_seconds_count{operation="commit"}'),
  };
  let listed: SessionView[] = [];
  const r = await runNcclient(
    viaB('alice@edge-1', {
      onEvent: (e) => void (e.type === 'step' && e.index === 4 && b.get<SessionView[]>('/api/sessions').then((s) => (listed = s.body))),
      steps: [
        ...lockedEditSteps(interfaceConfig(name, 'forwarded from gw-b to gw-a')),
        { op: 'sleep', seconds: 0.5 },
        { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
        ...lockedEditSteps(interfaceDeleteConfig(name)),
        { op: 'close-session' },
      ],
    }),
  );
  assertNcOk(r);
  t.is(r.base, '1.1', 'the hello exchange is end to end');
  t.true(r.serverCapabilities.includes(CAP_BASE_11));
  t.regex(r.steps[5]!.reply ?? '', new RegExp(`<name>${name}</name>`));
  t.is(await forwarded(b, 'out'), before.out + 1);
  t.is(await forwarded(a, 'in'), before.in + 1);
  // Counted on gw-b (the manager's replica), not again on gw-a.
  t.true((await b.metric('callhome_netconf_messages_total{direction="to_device"}')) >= before.bMessages + 11);
  t.true((await b.metric('callhome_rpc_duration_seconds_count{operation="commit"}')) >= before.bCommits + 2);
  t.is(await a.metric('callhome_netconf_messages_total{direction="to_device"}'), before.aMessages, 'gw-a counts none of them');
  const mine = listed.find((s) => s.device === 'edge-1' && s.user === 'alice');
  t.is(mine?.replica, 'gw-b', JSON.stringify(listed));
  t.deepEqual((await a.get<SessionView[]>('/api/sessions')).body, [], 'gw-a does not list it: one entry cluster-wide');
  const audit = readFileSync(b.config.audit.file, 'utf8');
  t.regex(audit, /"event":"rpc".*"operation":"commit"/, 'gw-b audits the RPCs');
  t.notRegex(readFileSync(a.config.audit.file, 'utf8').replace(/^$/, ''), /"operation":"commit"[^\n]*"user":"alice"[^\n]*edge-1/, 'gw-a does not audit them again');
});

test.serial('the per-device port on gw-b forwards the same way', async (t) => {
  const name = uniqueIfName('fwdp');
  const r = await runNcclient({
    ...viaB('alice'),
    port: edge1Port,
    steps: [...lockedEditSteps(interfaceConfig(name, 'device port')), ...lockedEditSteps(interfaceDeleteConfig(name))],
  });
  assertNcOk(r);
  t.pass();
});

test.serial('OpenSSH at base:1.0 through gw-b: replies, and the exit status of a local device (0)', async (t) => {
  const [fromA, fromB] = [a.logs.length, b.logs.length];
  const ssh = await runOpenSshNetconf({
    host: HOSTS[1],
    port: b.northboundPort,
    username: 'alice@edge-1',
    identityFile: manager.privateKeyFile,
    rpcs: ['<get-config><source><running/></source></get-config>', `<get><filter type="subtree"><interfaces xmlns="${IF_NS}"/></filter></get>`],
  });
  // If the session stalls, say where (netconfd once sat on an <rpc> read with the hello: openssh.ts).
  t.false(
    ssh.timedOut,
    `ssh killed after ${ssh.ms} ms: hello ${ssh.serverHello ? 'received' : 'missing'}, ${ssh.replies.length} of 2 replies, close reply ${ssh.closeReply ?? 'missing'}; ` +
      `stderr: ${ssh.stderr}\ngw-a:\n${a.logs.slice(fromA).join('\n')}\ngw-b:\n${b.logs.slice(fromB).join('\n')}`,
  );
  t.is(ssh.code, 0, `ssh stderr: ${ssh.stderr}`);
  t.true(ssh.serverHello?.includes(CAP_BASE_11), 'the device hello reaches OpenSSH unchanged');
  t.is(ssh.replies.length, 2);
  for (const reply of ssh.replies) t.regex(reply, /<rpc-reply[^>]*message-id="10[12]"[\s\S]*<data/);
  t.regex(ssh.closeReply ?? '', /<ok\/>/);
});

test.serial('a large get-config arrives byte for byte as on the owner itself', async (t) => {
  const prefix = uniqueIfName('fwdbig');
  const names = Array.from({ length: 300 }, (_, i) => `${prefix}-${i}`);
  const text = 'x'.repeat(900);
  const config = `<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="${IF_NS}">${names
    .map(
      (n) =>
        `<interface><name>${n}</name><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type><description>${text} ${n}</description></interface>`,
    )
    .join('')}</interfaces></config>`;
  assertNcOk(await runNcclient(viaB('alice@edge-1', { steps: lockedEditSteps(config, 30), timeout: 60 })));
  const filter = `<get-config><source><running/></source><filter type="subtree"><interfaces xmlns="${IF_NS}">${names.map((n) => `<interface><name>${n}</name></interface>`).join('')}</interfaces></filter></get-config>`;
  const read = (host: string, port: number) => runOpenSshNetconf({ host, port, username: 'alice@edge-1', identityFile: manager.privateKeyFile, rpcs: [filter], timeoutMs: 60_000 });
  const [local, remote] = [await read(HOSTS[0], a.northboundPort), await read(HOSTS[1], b.northboundPort)];
  t.is(remote.code, 0, remote.stderr);
  t.true(remote.replies[0]!.length > 300 * 900, `reply of ${remote.replies[0]!.length} bytes`);
  t.is(remote.replies[0], local.replies[0], 'the forwarded reply is the local reply, byte for byte');
  const del = `<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="${IF_NS}">${names
    .map((n) => `<interface nc:operation="delete"><name>${n}</name></interface>`)
    .join('')}</interfaces></config>`;
  assertNcOk(await runNcclient(viaB('alice@edge-1', { steps: lockedEditSteps(del, 30), timeout: 60 })));
});

test.serial('three concurrent forwarded sessions, each with its own device session', async (t) => {
  const names = [0, 1, 2].map((i) => uniqueIfName(`fwd3${i}`));
  let connected = 0;
  let all: () => void;
  const together = new Promise<void>((r) => (all = r));
  const runs = names.map((name) =>
    runNcclient(
      viaB('alice@edge-1', {
        onEvent: (e) => e.type === 'connected' && ++connected === 3 && all(),
        steps: [
          { op: 'sleep', seconds: 1.5 },
          ...lockedEditSteps(interfaceConfig(name, 'three at once'), 30),
          { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
        ],
      }),
    ),
  );
  await together;
  const onB = (await b.get<SessionView[]>('/api/sessions')).body.filter((s) => s.device === 'edge-1');
  t.is(onB.length, 3, JSON.stringify(onB));
  t.is((await a.get<DeviceView>('/api/devices/edge-1')).body.sessions, 3, 'the owner counts them on the device');
  const results = await Promise.all(runs);
  results.forEach((r, i) => {
    assertNcOk(r);
    t.regex(r.steps.at(-1)!.reply ?? '', new RegExp(`<name>${names[i]}</name>`));
  });
  t.is(new Set(results.map((r) => r.sessionId)).size, 3, 'three NETCONF sessions on the device');
  for (const name of names) assertNcOk(await runNcclient(viaB('alice@edge-1', { steps: lockedEditSteps(interfaceDeleteConfig(name), 30) })));
});

test.serial("the owner's refusal (per-device session cap) reaches the manager on gw-b in the same words", async (t) => {
  // Fill the device's sessions on gw-a itself; gw-b holds none, so only the owner can refuse.
  let up = 0;
  let full: () => void;
  const filled = new Promise<void>((r) => (full = r));
  const holders = Array.from({ length: MAX_PER_DEVICE }, () =>
    runNcclient({
      host: HOSTS[0],
      port: a.northboundPort,
      username: 'alice@edge-1',
      password: 'alice-pw',
      onEvent: (e) => e.type === 'connected' && ++up === MAX_PER_DEVICE && full(),
      steps: [{ op: 'sleep', seconds: 4 }],
    }),
  );
  await filled;
  const before = await forwarded(b, 'out', 'rejected_limit');
  const ssh = await runOpenSshNetconf({ host: HOSTS[1], port: b.northboundPort, username: 'alice@edge-1', identityFile: manager.privateKeyFile, timeoutMs: 15_000 });
  t.false(ssh.timedOut, 'a refusal never hangs');
  t.regex(ssh.stderr, new RegExp(`^callhome-gateway: device edge-1 already carries ${MAX_PER_DEVICE} client sessions \\(northbound.maxSessionsPerDevice\\)$`, 'm'));
  t.is(await forwarded(b, 'out', 'rejected_limit'), before + 1);
  t.true((await b.metric('callhome_client_sessions_total{result="rejected_limit"}')) >= 1);
  for (const r of await Promise.all(holders)) assertNcOk(r);
});

test.serial('a TLS device on gw-a lends its held session to a manager on gw-b; its messages are counted once, by the owner', async (t) => {
  await tlsDevice.callHome(HOSTS[0], a.gateway.addresses().callhomeTls);
  await waitFor('tls-1 on gw-a', async () => (await b.get<DeviceView>('/api/devices/tls-1')).body.replica === 'gw-a', { timeoutMs: 20_000 });
  const before = { a: await a.metric('callhome_netconf_messages_total{direction="to_device"}'), b: await b.metric('callhome_netconf_messages_total{direction="to_device"}') };
  const name = uniqueIfName('fwdtls');
  let kind = '';
  const r = await runNcclient(
    viaB('alice@tls-1', {
      onEvent: (e) =>
        void (
          e.type === 'step' &&
          e.index === 0 &&
          b.get<Array<SessionView & { kind: string }>>('/api/sessions').then((s) => (kind = s.body.find((x) => x.device === 'tls-1')?.kind ?? ''))
        ),
      steps: [
        { op: 'sleep', seconds: 0.3 },
        ...lockedEditSteps(interfaceConfig(name, 'lent across replicas')),
        ...lockedEditSteps(interfaceDeleteConfig(name)),
        { op: 'close-session' },
      ],
    }),
  );
  assertNcOk(r);
  t.is(kind, 'held', 'gw-b lists the session as a lent held session');
  t.true((await a.metric('callhome_netconf_messages_total{direction="to_device"}')) >= before.a + 8, 'the held session on gw-a counts them');
  t.is(await b.metric('callhome_netconf_messages_total{direction="to_device"}'), before.b, 'gw-b does not count them again');
});

test.serial('a manager waiting on gw-b is served when the device calls gw-a (waitForDevice across replicas)', async (t) => {
  const waiting = runNcclient(viaB('alice@edge-late', { steps: [{ op: 'get-config', source: 'running' }], processTimeoutMs: 60_000, timeout: 40 }));
  await b.waitForLog(/client waits for the device to call home/);
  late.callHome(HOSTS[0], a.callhomePort);
  const r = await waiting;
  assertNcOk(r);
  t.is((await b.get<DeviceView>('/api/devices/edge-late')).body.replica, 'gw-a');
  await late.stop();
});

test.serial('peer connections without a valid peer certificate are refused; the listener goes on serving', async (t) => {
  const unauthorized = () => forwarded(a, 'in', 'unauthorized');
  const before = await unauthorized();
  const attempt = (opts: { cert?: string; key?: string }) =>
    new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: HOSTS[0], port: cluster.peerPort, ca: readFileSync(cluster.peer.ca), rejectUnauthorized: false, ...opts });
      socket.on('secureConnect', () => socket.write(encodeFrame(FrameType.Open, '{"v":1}')));
      socket.on('data', () => resolve('answered'));
      socket.on('error', (err) => resolve(`error: ${err.message}`));
      socket.on('close', () => resolve('closed'));
    });
  // No certificate at all: refused in the handshake.
  t.not(await attempt({}), 'answered');
  // A device certificate from the same CA (a TLS server's: refused as a client in the handshake).
  const dev = issueDeviceFiles(cluster.caState, { id: 'edge-1', outDir: makeTempDir('chgw-fwd-dev') });
  t.not(await attempt({ cert: readFileSync(dev.cert, 'utf8'), key: readFileSync(dev.key, 'utf8') }), 'answered');
  // The gateway's call-home client certificate from the same CA: a valid client chain, but not a peer's.
  const gwCert = path.join(cluster.caState, 'tls');
  t.not(await attempt({ cert: readFileSync(path.join(gwCert, 'gateway.crt'), 'utf8'), key: readFileSync(path.join(gwCert, 'gateway.key'), 'utf8') }), 'answered');
  await waitFor('all three counted as unauthorized', async () => (await unauthorized()) === before + 3, { timeoutMs: 5_000 });
  await a.waitForLog(/peer connection refused: certificate callhome-gateway is not a peer certificate/);
  // A valid peer certificate with a malformed request: a protocol error, answered with nothing.
  const proto = await forwarded(a, 'in', 'protocol_error');
  t.not(await attempt({ cert: readFileSync(cluster.peer.cert, 'utf8'), key: readFileSync(cluster.peer.key, 'utf8') }), 'answered');
  await waitFor('counted as protocol_error', async () => (await forwarded(a, 'in', 'protocol_error')) === proto + 1, { timeoutMs: 5_000 });
  assertNcOk(await runNcclient(viaB('alice@edge-1', { steps: [{ op: 'get-config', source: 'running' }] }))); // still serving
  t.pass();
});

test.serial('silent peer connections: at most MAX_PENDING before their request, each dropped at the handshake deadline', async (t) => {
  const before = await forwarded(a, 'in', 'rejected_limit');
  const opened = Date.now();
  const sockets = Array.from({ length: MAX_PENDING + 6 }, () => netConnect({ host: HOSTS[0], port: cluster.peerPort }));
  const closedAt = sockets.map(
    (s) =>
      new Promise<number>((resolve) => {
        s.on('error', () => {});
        s.on('close', () => resolve(Date.now() - opened));
      }),
  );
  await waitFor('the connections beyond the limit dropped at accept', async () => (await forwarded(a, 'in', 'rejected_limit')) >= before + 6, { timeoutMs: 5_000 });
  const times = await Promise.all(closedAt);
  const late = times.filter((ms) => ms > 5_000);
  t.true(late.length >= MAX_PENDING - 2, `${late.length} connections held until the deadline`);
  t.true(Math.max(...times) < (HANDSHAKE_SECONDS + 5) * 1000, `the last closed after ${Math.max(...times)} ms`);
  // The listener serves again once they are gone.
  assertNcOk(await runNcclient(viaB('alice@edge-1', { steps: [{ op: 'get-config', source: 'running' }] })));
});

test.serial('Redis unreachable: a manager on gw-b is refused at once with a clear reason; back when Redis is', async (t) => {
  await cluster.redis.stop();
  try {
    const started = Date.now();
    const ssh = await runOpenSshNetconf({ host: HOSTS[1], port: b.northboundPort, username: 'alice@edge-1', identityFile: manager.privateKeyFile, timeoutMs: 15_000 });
    t.false(ssh.timedOut);
    t.true(Date.now() - started < 10_000);
    t.regex(ssh.stderr, /^callhome-gateway: device edge-1: cannot look up its owner: the cluster's Redis is unreachable$/m);
    // The owner's own managers are served as before.
    assertNcOk(await runNcclient({ host: HOSTS[0], port: a.northboundPort, username: 'alice@edge-1', password: 'alice-pw', steps: [{ op: 'get-config', source: 'running' }] }));
  } finally {
    await cluster.redis.start();
  }
  await waitFor('edge-1 registered again', async () => (await b.get<DeviceView>('/api/devices/edge-1')).body.replica === 'gw-a', { timeoutMs: 30_000 });
  const r = await runNcclient(viaB('alice@edge-1', { steps: [{ op: 'get-config', source: 'running' }] }));
  assertNcOk(r);
  t.log(describeNcResult(r));
});
