// The whole call-home path with real peers: OpenSSH `sshd -i` + netconfd devices calling
// home (RFC 8071 §4.1), ncclient and the OpenSSH client as managers, through the gateway.
import anyTest from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import {
  CAP_BASE_10,
  CAP_BASE_11,
  CAP_CANDIDATE,
  CallHomeDevice,
  INTERFACES_FILTER,
  assertNcOk,
  describeNcResult,
  ensureNetconfd,
  freePort,
  interfaceConfig,
  interfaceDeleteConfig,
  interfaceFilter,
  lockedEditSteps,
  requirePeers,
  runNcclient,
  runOpenSshNetconf,
  uniqueIfName,
  generateKeyPair,
  makeTempDir,
  type NcJob,
} from './peers/index.js';

const test = requirePeers(anyTest);

type DeviceView = { id: string; state: string; port: number | null; sessions: number; capabilities: string[]; remoteAddress: string | null };

let gw: TestGateway;
let edge1: CallHomeDevice; // shared port and per-device port
let edge2: CallHomeDevice; // logged in to by password where the platform allows it
let stranger: CallHomeDevice; // in no inventory entry
let wrongCreds: CallHomeDevice; // listed, but with credentials the device refuses
let edge1Port: number;
let manager: { privateKeyFile: string; publicKeyLine: string };
const devices: CallHomeDevice[] = [];

function inventory(): string {
  const wrongKey = path.join(stranger.privateKeyFile); // a valid key the device does not accept
  const edge2Creds = edge2.password
    ? `{ username: ${edge2.password.username}, password: "${edge2.password.password}" }`
    : `{ username: ${edge2.username}, privateKeyFile: ${edge2.privateKeyFile} }`;
  return `devices:
  - id: edge-1
    ssh: { hostKeys: ["${edge1.hostPublicKeyLine}"] }
    credentials: { username: ${edge1.username}, privateKeyFile: ${edge1.privateKeyFile} }
    port: ${edge1Port}
  - id: edge-2
    ssh: { hostKeys: [${edge2.hostKeyFingerprint}] }
    credentials: ${edge2Creds}
  - id: edge-wrong
    ssh: { hostKeys: [${wrongCreds.hostKeyFingerprint}] }
    credentials: { username: ${wrongCreds.username}, privateKeyFile: ${wrongKey} }
  - id: edge-offline
    ssh: { hostKeys: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }
    credentials: { username: x, password: y }
`;
}

const USERS = () => `users:
  - name: alice
    password: alice-pw
    authorizedKeys: ["${manager.publicKeyLine}"]
    devices: ["edge-*"]
  - name: bob
    password: bob-pw
    devices: ["core-*"]
`;

test.before(async () => {
  await ensureNetconfd();
  [edge1, edge2, stranger, wrongCreds] = await Promise.all(['edge-1', 'edge-2', 'stranger', 'wrong-creds'].map((name) => CallHomeDevice.create({ name })));
  devices.push(edge1, edge2, stranger, wrongCreds);
  manager = await generateKeyPair(path.join(makeTempDir('chgw-manager'), 'id_ed25519'), 'alice@laptop');
  edge1Port = await freePort();
  gw = await startGateway({ inventory: inventory(), users: USERS() });
  edge1.persistent('127.0.0.1', gw.callhomePort, { pauseMs: 300 });
  edge2.callHome('127.0.0.1', gw.callhomePort);
  await waitFor(
    'edge-1 and edge-2 to connect',
    async () => {
      const list = (await gw.get<DeviceView[]>('/api/devices')).body;
      return list.filter((d) => d.state === 'connected').length === 2;
    },
    { timeoutMs: 20_000 },
  );
});

test.after.always(async () => {
  await gw?.close();
  await Promise.all(devices.map((d) => d.dispose()));
});

const job = (port: number, username: string, extra: Partial<NcJob>): NcJob => ({
  host: '127.0.0.1',
  port,
  username,
  password: 'alice-pw',
  steps: [],
  ...extra,
});

test('the device hello, capabilities and state are shown by the API', async (t) => {
  const view = (await gw.get<DeviceView>('/api/devices/edge-1')).body;
  t.is(view.state, 'connected');
  t.is(view.port, edge1Port);
  t.is(view.remoteAddress, '127.0.0.1');
  for (const cap of [CAP_BASE_10, CAP_BASE_11, CAP_CANDIDATE]) t.true(view.capabilities.includes(cap), cap);
  t.false(
    view.capabilities.some((c) => c.includes('&amp;')),
    'XML entities are decoded',
  );
  t.is((await gw.get<DeviceView>('/api/devices/edge-offline')).body.state, 'disconnected');
});

for (const route of ['shared port (alice@edge-1)', 'per-device port (alice)'] as const) {
  test.serial(`ncclient through the ${route}: get-config, edit-config on candidate + commit, lock/unlock, close-session`, async (t) => {
    const shared = route.startsWith('shared');
    const name = uniqueIfName(shared ? 'gws' : 'gwp');
    const r = await runNcclient(
      job(shared ? gw.northboundPort : edge1Port, shared ? 'alice@edge-1' : 'alice', {
        steps: [
          { op: 'get-config', source: 'running' },
          ...lockedEditSteps(interfaceConfig(name, `through the ${route}`)),
          { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
          ...lockedEditSteps(interfaceDeleteConfig(name)),
          { op: 'close-session' },
        ],
      }),
    );
    assertNcOk(r);
    t.is(r.base, '1.1', 'ncclient and netconfd agree on chunked framing end to end');
    t.true(r.serverCapabilities.includes(CAP_CANDIDATE));
    t.regex(r.steps[5]!.reply ?? '', new RegExp(`<name>${name}</name>`), 'the committed change is in running');
    t.regex(r.steps[5]!.reply ?? '', new RegExp(`through the ${route.replace(/[()]/g, '.')}`));
  });
}

test.serial('OpenSSH ssh -s netconf with a base:1.0 hello while ncclient works at base:1.1', async (t) => {
  const name = uniqueIfName('gwo');
  const nc = runNcclient(
    job(gw.northboundPort, 'alice@edge-1', {
      steps: [...lockedEditSteps(interfaceConfig(name, 'concurrent with ssh')), { op: 'sleep', seconds: 1 }, { op: 'get', filter: interfaceFilter(name) }],
    }),
  );
  const ssh = await runOpenSshNetconf({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@edge-1',
    identityFile: manager.privateKeyFile,
    rpcs: ['<get-config><source><running/></source></get-config>', `<get><filter type="subtree">${INTERFACES_FILTER}</filter></get>`],
  });
  t.is(ssh.code, 0, `ssh stderr: ${ssh.stderr}; stdout: ${ssh.stdout.slice(0, 300)}`);
  t.false(ssh.timedOut);
  t.true(ssh.serverHello?.includes(CAP_BASE_11), 'the device hello reaches OpenSSH unchanged');
  t.is(ssh.replies.length, 2);
  for (const reply of ssh.replies) t.regex(reply, /<rpc-reply[^>]*message-id="10[12]"[\s\S]*<data/);
  t.regex(ssh.closeReply ?? '', /<ok\/>/);
  const r = await nc;
  assertNcOk(r);
  t.is(r.base, '1.1');
  assertNcOk(await runNcclient(job(gw.northboundPort, 'alice@edge-1', { steps: lockedEditSteps(interfaceDeleteConfig(name)) })));
});

test.serial('two ncclient sessions on one device at the same time, each doing work', async (t) => {
  const names = [uniqueIfName('gw2a'), uniqueIfName('gw2b')];
  let bothConnected: () => void;
  const together = new Promise<void>((r) => (bothConnected = r));
  let connected = 0;
  const sessions = names.map((name) =>
    runNcclient(
      job(gw.northboundPort, 'alice@edge-1', {
        onEvent: (e) => e.type === 'connected' && ++connected === 2 && bothConnected(),
        steps: [
          { op: 'sleep', seconds: 1 },
          ...lockedEditSteps(interfaceConfig(name, 'parallel'), 30),
          { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
          { op: 'sleep', seconds: 1 },
        ],
      }),
    ),
  );
  await together;
  const during = (await gw.get<DeviceView>('/api/devices/edge-1')).body;
  t.true(during.sessions >= 2, `sessions in the API while both run: ${during.sessions}`);
  const results = await Promise.all(sessions);
  results.forEach((r, i) => {
    assertNcOk(r);
    t.regex(r.steps.at(-2)!.reply ?? '', new RegExp(`<name>${names[i]}</name>`));
  });
  t.not(results[0]!.sessionId, results[1]!.sessionId, 'each client has its own NETCONF session on the device');
  for (const name of names) assertNcOk(await runNcclient(job(gw.northboundPort, 'alice@edge-1', { steps: lockedEditSteps(interfaceDeleteConfig(name), 30) })));
});

test('a device logged in to by password works end to end', async (t) => {
  if (!edge2.password) t.log('device password login is unavailable here (not root): edge-2 uses its key instead');
  const r = await runNcclient(job(gw.northboundPort, 'alice@edge-2', { steps: [{ op: 'get-config', source: 'running' }] }));
  assertNcOk(r);
  t.pass();
});

test('an unknown device is refused and listed in /api/pending; wrong device credentials count as auth_failed', async (t) => {
  const before = await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}');
  const unknown = stranger.callHome('127.0.0.1', gw.callhomePort);
  const wrong = wrongCreds.callHome('127.0.0.1', gw.callhomePort);
  await Promise.all([unknown.exited, wrong.exited]);
  const pending = (await gw.get<Array<{ fingerprint: string; keyType: string; attempts: number }>>('/api/pending')).body;
  const entry = pending.find((p) => p.fingerprint === stranger.hostKeyFingerprint);
  t.truthy(entry, JSON.stringify(pending));
  t.is(entry!.keyType, 'ssh-ed25519');
  t.true((await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) >= 1);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}'), before + 1);
  t.is((await gw.get<DeviceView>('/api/devices/edge-wrong')).body.state, 'disconnected');
  t.false(/Accepted|session opened/.test(stranger.sshdLog()), 'nothing logged in to the unknown device');
});

test('clients with a wrong password, not allowed, or naming a device that does not exist are refused', async (t) => {
  const wrongPw = await runNcclient({ ...job(gw.northboundPort, 'alice@edge-1', {}), password: 'nope' });
  t.false(wrongPw.connected);
  t.is(wrongPw.error?.kind, 'auth', describeNcResult(wrongPw));
  for (const [user, password, reason] of [
    ['bob@edge-1', 'bob-pw', /may not reach it/],
    ['alice@no-such-device', 'alice-pw', /does not exist/],
    ['alice@edge-offline', 'alice-pw', /not connected/],
  ] as const) {
    const r = await runNcclient({ ...job(gw.northboundPort, user, {}), password, steps: [{ op: 'get-config', source: 'running' }] });
    // ncclient reports only that the session closed; the reason is on the channel's stderr
    // (OpenSSH prints it, below) and in the gateway's log.
    t.false(r.ok, `${user}: ${describeNcResult(r)}`);
    t.not(r.error?.kind, 'auth', `${user} authenticated; the refusal is per device`);
    await gw.waitForLog(new RegExp(`"user":"${user.split('@')[0]}".*client session refused: .*${reason.source}`));
  }
  const ssh = await runOpenSshNetconf({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@no-such-device', identityFile: manager.privateKeyFile, timeoutMs: 10_000 });
  t.false(ssh.timedOut, 'a refusal never hangs');
  t.regex(ssh.stderr, /callhome-gateway: device no-such-device does not exist/);
  t.true((await gw.metric('callhome_client_sessions_total{result="auth_failed"}')) >= 1);
  t.true((await gw.metric('callhome_client_sessions_total{result="denied"}')) >= 3);
  t.true((await gw.metric('callhome_client_sessions_total{result="device_unavailable"}')) >= 1);
});

test.serial('the device hanging up mid-session closes the client session; a persistent device comes back', async (t) => {
  let inSleep: () => void;
  const sleeping = new Promise<void>((r) => (inSleep = r));
  const nc = runNcclient(
    job(gw.northboundPort, 'alice@edge-1', {
      steps: [
        { op: 'get-config', source: 'running' },
        { op: 'sleep', seconds: 4 },
        { op: 'get-config', source: 'running' },
      ],
      onEvent: (e) => e.type === 'step' && e.index === 0 && inSleep(),
      processTimeoutMs: 40_000,
    }),
  );
  await sleeping;
  const started = Date.now();
  edge1.kill();
  await waitFor('edge-1 disconnected', async () => (await gw.get<DeviceView>('/api/devices/edge-1')).body.state === 'disconnected', { timeoutMs: 10_000 });
  await waitFor('the client session to close', async () => (await gw.metric('callhome_client_sessions_active')) === 0, { timeoutMs: 10_000 });
  t.log(`client session closed ${Date.now() - started} ms after the device was killed`);
  const r = await nc;
  t.false(r.steps[2]?.ok ?? false, describeNcResult(r));
  await deviceConnected(gw, 'edge-1', 20_000);
  t.true((await gw.metric('callhome_device_disconnects_total{reason="device_closed"}')) >= 1);
});

test.after('metrics show what the tests did', async (t) => {
  const text = await gw.metrics();
  writeFileSync(path.join(gw.dir, 'metrics.txt'), text);
  for (const re of [
    /^callhome_connections_total\{transport="ssh",result="accepted"\} [1-9]/m,
    /^callhome_netconf_messages_total\{direction="to_device"\} [1-9]/m,
    /^callhome_netconf_messages_total\{direction="to_client"\} [1-9]/m,
    /^callhome_netconf_bytes_total\{direction="to_client"\} [1-9]/m,
    /^callhome_rpc_duration_seconds_count\{operation="get-config"\} [1-9]/m,
    /^callhome_rpc_duration_seconds_count\{operation="commit"\} [1-9]/m,
    /^callhome_rpc_duration_seconds_count\{operation="lock"\} [1-9]/m,
    /^callhome_handshake_duration_seconds_count\{transport="ssh"\} [1-9]/m,
  ]) {
    t.regex(text, re);
  }
});
