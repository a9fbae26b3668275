// Periodic devices and waiting managers, with real peers: a manager that connects while its
// device is offline is held (northbound.waitForDevice) and spliced when the device calls;
// an idle periodic device is sent <close-session> (netconfd's log shows it) and released.
import anyTest from 'ava';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { CallHomeDevice, assertNcOk, ensureNetconfd, netconfdLogOffset, requirePeers, runNcclient, runOpenSshNetconf, waitForNetconfdLog } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);

type View = { state: string; sessions: number; lastDisconnects: Array<{ reason: string }> };

const WAIT = 8;
const IDLE = 2;
let gw: TestGateway;
let device: CallHomeDevice;

test.before(async () => {
  await ensureNetconfd();
  device = await CallHomeDevice.create({ name: 'periodic' });
  gw = await startGateway({
    inventory: `devices:
  - id: periodic-1
    ssh: { hostKeys: [${device.hostKeyFingerprint}] }
    credentials: { username: ${device.username}, privateKeyFile: ${device.privateKeyFile} }
    periodic: true
    idleTimeout: ${IDLE}
  - id: never-calls
    ssh: { hostKeys: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }
    credentials: { username: x, password: y }
`,
    users: 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n',
    env: { CHGW_NORTHBOUND_WAITFORDEVICE: String(WAIT) },
  });
});

test.after.always(async () => {
  await gw?.close();
  await device?.dispose();
});

const view = async (id: string) => (await gw.get<View>(`/api/devices/${id}`)).body;

test.serial('a manager waiting for an offline device is spliced when it calls home; the idle periodic device then gets <close-session> and is released', async (t) => {
  t.is((await view('periodic-1')).state, 'disconnected');
  const since = netconfdLogOffset();
  const nc = runNcclient({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@periodic-1',
    password: 'alice-pw',
    timeout: WAIT + 10,
    steps: [{ op: 'get-config', source: 'running' }],
    end: 'close-session',
  });
  await gw.waitForLog(/client waits for the device to call home/);
  const calledAt = Date.now();
  device.callHome('127.0.0.1', gw.callhomePort);
  const r = assertNcOk(await nc);
  t.log(`spliced; ncclient finished ${Date.now() - calledAt} ms after the device called`);
  t.regex(r.steps[0]!.reply ?? '', /<data/);

  // No client now: after IDLE seconds the gateway ends the connection politely.
  const idleFrom = Date.now();
  const [m] = await waitForNetconfdLog(/agt_rpc: <close-session> for (\d+)=\S+ \(m:idle-release\)/, { since, timeoutMs: (IDLE + 10) * 1000 });
  t.truthy(m, 'netconfd received the close-session with the gateway message-id');
  await waitFor('the periodic device to be released', async () => (await view('periodic-1')).state === 'disconnected', { timeoutMs: 10_000 });
  const ms = Date.now() - idleFrom;
  t.log(`released ${ms} ms after the last client left (idleTimeout ${IDLE}s)`);
  t.true(ms >= IDLE * 1000 - 300, `not before idleTimeout (${ms} ms)`);
  t.true(ms <= IDLE * 1000 + 2500, `soon after idleTimeout (${ms} ms)`);
  t.is((await view('periodic-1')).lastDisconnects[0]?.reason, 'GW_ERR_IDLE_RELEASE');
  t.is(await gw.metric('callhome_device_disconnects_total{reason="idle_release"}'), 1);
  await waitFor("the device's sshd -i to exit", () => device.liveConnections === 0, { timeoutMs: 10_000 });
});

test.serial('a periodic device in use is not released; it is once the client leaves', async (t) => {
  device.callHome('127.0.0.1', gw.callhomePort);
  await deviceConnected(gw, 'periodic-1', 20_000);
  const r = await runNcclient({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@periodic-1',
    password: 'alice-pw',
    steps: [
      { op: 'sleep', seconds: IDLE + 2 },
      { op: 'get-config', source: 'running' },
    ],
  });
  assertNcOk(r);
  t.pass('the session outlived idleTimeout');
  await waitFor('release after the client left', async () => (await view('periodic-1')).state === 'disconnected', { timeoutMs: (IDLE + 8) * 1000 });
});

test.serial('waitForDevice runs out: the client gets a one-line reason, never a hang', async (t) => {
  const started = Date.now();
  const r = await runOpenSshNetconf({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@never-calls',
    password: 'alice-pw',
    timeoutMs: (WAIT + 10) * 1000,
  });
  const ms = Date.now() - started;
  t.false(r.timedOut);
  t.regex(r.stderr, /callhome-gateway: device never-calls did not call home within 8s/);
  t.true(ms >= WAIT * 1000 - 200, `${ms} ms`);
  t.true((await gw.metric('callhome_client_sessions_total{result="device_unavailable"}')) >= 1);
});
