// Devices and managers built on libnetconf2 (Debian libnetconf2-dev 2.0.x, the stack under
// Netopeer2), on the gateway's defaults. libnetconf2 ties its call-home connection to the
// connection's first NETCONF session: the gateway must hold that session and never end it.
// Also: keyboard-interactive-only login, a wrong password, and a device that flaps.
import anyTest from 'ava';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { issueDeviceFiles } from '../../src/tls/certs.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import {
  Lnc2Device,
  assertNcOk,
  describeLnc2,
  freePort,
  generateKeyPair,
  makeTempDir,
  requireLibnetconf2,
  runLnc2Manager,
  runNcclient,
  runOpenSshNetconf,
  sleep,
  type KeyPair,
} from './peers/index.js';

const test = requireLibnetconf2(anyTest);

type View = {
  id: string;
  state: string;
  transport: string;
  reconnects: number;
  sessions: number;
  sessionMode: string | null;
  sessionModeReason: string | null;
  flapping: { shortConnections: number; lastReason: string; lastMessage: string } | null;
  connectedAt: string | null;
  capabilities: string[];
};

const DEVICE_PASSWORD = 'device-pw';
const STABLE_SECONDS = 60;
/** The last entry of the device's generated list: present only when the whole reply came through. */
const LAST_ITEM = 'item-001999';

let gw: TestGateway;
let mainPort: number;
const devices = new Map<string, Lnc2Device>();
const keys = new Map<string, KeyPair>();
let managerKey: KeyPair;

const names = ['lnc2-main', 'lnc2-key', 'lnc2-kbd', 'lnc2-wrong', 'lnc2-flap'] as const;

test.before(async () => {
  const dir = makeTempDir('chgw-lnc2-');
  for (const n of names) keys.set(n, await generateKeyPair(path.join(dir, `${n}_host`), `${n}-host`));
  managerKey = await generateKeyPair(path.join(dir, 'gateway_client'), 'gateway-to-device');
  mainPort = await freePort();
  const entry = (n: string, creds: string, extra = '') => `  - id: ${n}\n    ssh: { hostKeys: ["${keys.get(n)!.publicKeyLine}"] }\n    credentials: ${creds}\n${extra}`;
  gw = await startGateway({
    inventory:
      'devices:\n' +
      entry('lnc2-main', `{ username: admin, password: ${DEVICE_PASSWORD} }`, `    port: ${mainPort}\n`) +
      entry('lnc2-key', `{ username: admin, privateKeyFile: ${managerKey.privateKeyFile} }`) +
      entry('lnc2-kbd', `{ username: admin, password: ${DEVICE_PASSWORD} }`) +
      entry('lnc2-wrong', '{ username: admin, password: not-the-password }') +
      entry('lnc2-flap', `{ username: admin, password: ${DEVICE_PASSWORD} }`),
    users: 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n',
  });
  const common = { gatewayPort: gw.callhomePort, password: DEVICE_PASSWORD };
  const start = async (n: string, opts: Partial<Parameters<typeof Lnc2Device.start>[0]>) =>
    devices.set(n, await Lnc2Device.start({ ...common, hostKeyFile: keys.get(n)!.privateKeyFile, ...opts }));
  await Promise.all([
    start('lnc2-main', { auth: ['password'] }),
    start('lnc2-key', { auth: ['publickey'], authorizedKeyFile: managerKey.publicKeyFile }),
    start('lnc2-kbd', { auth: ['keyboard-interactive'], kbdEmptyRound: true }),
    start('lnc2-wrong', { auth: ['password', 'keyboard-interactive'], kbdReprompt: true }),
    start('lnc2-flap', { auth: ['password'], dropAfterMs: 300 }),
  ]);
  await deviceConnected(gw, 'lnc2-main', 20_000);
});

test.after.always(async () => {
  await Promise.all([...devices.values()].map((d) => d.stop()));
  await gw?.close();
});

async function view(id: string): Promise<View> {
  return (await gw.get<View>(`/api/devices/${id}`)).body;
}

test('a libnetconf2 device stays connected with zero reconnects for 60 s on the defaults, its first session held', async (t) => {
  const first = await view('lnc2-main');
  t.is(first.sessionMode, 'multiple', first.sessionModeReason ?? '');
  t.true(first.capabilities.some((c) => c.includes('ietf-netconf')));
  const connectedAt = Date.parse(first.connectedAt!);
  await sleep(Math.max(0, connectedAt + STABLE_SECONDS * 1000 - Date.now()));
  const after = await view('lnc2-main');
  t.is(after.state, 'connected');
  t.is(after.reconnects, 0);
  t.is(after.connectedAt, first.connectedAt);
  t.is(devices.get('lnc2-main')!.connects, 1, 'the device called home once');
  t.log(`connected for ${((Date.now() - connectedAt) / 1000).toFixed(1)} s: ${after.sessionModeReason}`);
});

test('ncclient (shared port) and OpenSSH -s netconf at base:1.0 (per-device port) get-config through it', async (t) => {
  const [nc, ssh] = await Promise.all([
    runNcclient({
      host: '127.0.0.1',
      port: gw.northboundPort,
      username: 'alice@lnc2-main',
      password: 'alice-pw',
      steps: [{ op: 'get-config', source: 'running' }],
      end: 'close-session',
    }),
    runOpenSshNetconf({ host: '127.0.0.1', port: mainPort, username: 'alice', password: 'alice-pw', timeoutMs: 30_000 }),
  ]);
  assertNcOk(nc);
  const reply = nc.steps[0]!.reply ?? '';
  t.true(reply.length > 100_000, `ncclient reply of ${reply.length} bytes`);
  t.true(reply.includes(LAST_ITEM));
  // libnetconf2 closes its channels without an exit-status, which the gateway mirrors: OpenSSH
  // then exits 255 (as it does on a direct session with the same device).
  t.true(ssh.code === 0 || ssh.code === 255, `ssh exit ${ssh.code}: ${ssh.stderr}`);
  t.false(ssh.timedOut);
  t.true((ssh.replies[0] ?? '').length > 100_000);
  t.true((ssh.replies[0] ?? '').includes(LAST_ITEM));
  t.regex(ssh.closeReply ?? '', /<ok\/>/);
  t.notRegex(ssh.stdout, /\n#\d+\n/, 'base:1.0 end-of-message framing toward OpenSSH');
});

test('libnetconf2 managers: two one after the other, then two at the same time, each on its own channel', async (t) => {
  const a = await runLnc2Manager({ port: gw.northboundPort, user: 'alice@lnc2-main', password: 'alice-pw' });
  const b = await runLnc2Manager({ port: mainPort, user: 'alice', password: 'alice-pw', get: true });
  t.true(a.ok, describeLnc2(a));
  t.true(b.ok, describeLnc2(b));
  t.true(a.bytes! > 100_000 && b.bytes! > 100_000);
  const both = await Promise.all([0, 1].map(() => runLnc2Manager({ port: gw.northboundPort, user: 'alice@lnc2-main', password: 'alice-pw', count: 3, pauseMs: 300 })));
  for (const r of both) t.true(r.ok && r.replies === 3, describeLnc2(r));
  const ids = new Set([a, b, ...both].map((r) => r.sessionId));
  t.is(ids.size, 4, 'four NETCONF sessions of their own on the device');
  t.is((await view('lnc2-main')).reconnects, 0);
});

test('publickey-only and keyboard-interactive-only devices log in; a manager works through the latter', async (t) => {
  await deviceConnected(gw, 'lnc2-key', 20_000);
  await deviceConnected(gw, 'lnc2-kbd', 20_000);
  const kbd = devices.get('lnc2-kbd')!;
  t.deepEqual(kbd.authAttempts().get(1), [['keyboard-interactive', 'ok']]);
  // libssh asks its callback once for the key offer and once for the signature.
  const key = devices.get('lnc2-key')!.authAttempts().get(1) ?? [];
  t.true(key.length > 0 && key.every(([m, r]) => m === 'publickey' && r === 'ok'), JSON.stringify(key));
  t.true(kbd.events.includes('auth 1 keyboard-interactive empty-round'), 'the round without prompts was answered');
  const r = await runNcclient({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@lnc2-kbd', password: 'alice-pw', steps: [{ op: 'get' }] });
  assertNcOk(r);
  t.true((r.steps[0]!.reply ?? '').includes(LAST_ITEM));
});

test('a wrong password is auth_failed once per call-home attempt: each method tried once, a repeated prompt not answered', async (t) => {
  const device = devices.get('lnc2-wrong')!;
  await waitFor('four attempts of lnc2-wrong', () => device.connects >= 4, { timeoutMs: 30_000 });
  await device.stop();
  await sleep(500);
  const attempts = device.authAttempts();
  const failed = await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}');
  t.log(`${device.connects} connections, ${failed} counted auth_failed; per connection: ${JSON.stringify([...attempts.values()][0])}`);
  t.true(failed >= device.connects - 1 && failed <= device.connects, 'one auth_failed per connection (the last may have been cut by the stop)');
  for (const [conn, list] of attempts) {
    const methods = list.map(([m]) => m);
    t.true(new Set(methods).size === methods.length, `connection ${conn}: a method tried twice: ${methods.join(', ')}`);
    t.true(list.every(([, result]) => result === 'fail'));
  }
  t.deepEqual(attempts.get(1), [
    ['password', 'fail'],
    ['keyboard-interactive', 'fail'],
  ]);
  await gw.waitForLog(/"device":"lnc2-wrong".*GW_ERR_AUTH_FAILED.*asked for the password again/);
  const v = await view('lnc2-wrong');
  t.is(v.state, 'disconnected');
});

test('a device whose connection ends within seconds of login, again and again, is flapping and counted', async (t) => {
  const v = await waitFor(
    'lnc2-flap to be flapping',
    async () => {
      const x = await view('lnc2-flap');
      return x.state === 'flapping' ? x : undefined;
    },
    { timeoutMs: 30_000 },
  );
  t.true(v.flapping!.shortConnections >= 3);
  // libnetconf2 dials again at once: the new connection may replace the old one before its close is seen.
  t.regex(v.flapping!.lastReason, /^GW_ERR_(DEVICE_CLOSED|REPLACED)$/);
  t.true((await gw.metric('callhome_device_flaps_total{transport="ssh"}')) >= 1);
  t.is(await gw.metric('callhome_device_flaps_total{transport="tls"}'), 0);
  await gw.waitForLog(/"device":"lnc2-flap".*device is flapping/);
  await waitFor('lastError flapping', async () => (await gw.get<{ lastError: { reason: string } | null }>('/api/devices/lnc2-flap')).body.lastError?.reason === 'flapping', {
    timeoutMs: 10_000,
  });
  t.is((await view('lnc2-main')).flapping, null);
});

test('libnetconf2 calls home over TLS too: its one session is held and lent to one manager at a time', async (t) => {
  const out = makeTempDir('chgw-lnc2-tls-');
  const files = issueDeviceFiles(gw.config.stateDir, { id: 'lnc2-tls', outDir: out });
  const gatewayCert = path.join(gw.config.stateDir, 'tls', 'gateway.crt');
  appendFileSync(gw.inventoryFile, `  - id: lnc2-tls\n    tls: { ca: ${files.ca} }\n`);
  t.true(await gw.gateway.reloadInventory());
  const fingerprint = new X509Certificate(readFileSync(gatewayCert)).fingerprint256;
  devices.set(
    'lnc2-tls',
    await Lnc2Device.start({
      gatewayPort: gw.gateway.addresses().callhomeTls,
      tls: { cert: files.cert, key: files.key, gatewayCert, gatewayFingerprint: fingerprint, ca: files.ca },
    }),
  );
  const v = await deviceConnected<View>(gw, 'lnc2-tls', 20_000);
  t.is(v.transport, 'tls');
  t.is(v.sessionMode, 'single');
  const first = await runNcclient({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@lnc2-tls',
    password: 'alice-pw',
    steps: [{ op: 'get-config', source: 'running' }],
    end: 'close-session',
  });
  assertNcOk(first);
  t.true((first.steps[0]!.reply ?? '').includes(LAST_ITEM));
  const second = await runLnc2Manager({ port: gw.northboundPort, user: 'alice@lnc2-tls', password: 'alice-pw', count: 2 });
  t.true(second.ok && second.bytes! > 100_000, describeLnc2(second));
  t.is(String(second.sessionId), first.sessionId ?? '', 'the one TLS session, lent twice');
  const after = await view('lnc2-tls');
  t.is(after.reconnects, 0);
  t.is(devices.get('lnc2-tls')!.connects, 1);
});
