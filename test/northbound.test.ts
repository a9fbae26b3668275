// Northbound side over real loopback sockets: authentication, routing by user@device and
// by port, clean refusals, byte-exact splicing, framing errors, device loss.
import test from 'ava';
import { generateUsableEd25519 } from '../src/northbound/hostkey.js';
import { randomBytes } from 'node:crypto';
import type { ServerChannel } from 'ssh2';
import { type TestGateway } from './helpers/gateway.js';
import { callHomeConnected, managerSession, withGateway } from './helpers/fixture.js';
import { freePort, waitFor } from './helpers/wait.js';
import { NETCONF_HELLO, ScriptedDevice, inventoryFor } from './helpers/ssh-device.js';
import { CLIENT_HELLO_11, chunked, connectManager, openNetconf } from './helpers/ssh-manager.js';

const managerKey = generateUsableEd25519('test key');
const USERS = `users:
  - name: alice
    password: alice-pw
    authorizedKeys: ["${managerKey.public}"]
    devices: ["edge-*"]
  - name: bob
    password: bob-pw
    devices: ["core-*"]
`;

/** A device that answers every chunked <rpc> with a reply carrying `payload`, echoing the message-id. */
function replyingDevice(payload: string): (ch: ServerChannel) => void {
  return (ch) => {
    ch.write(NETCONF_HELLO);
    let buffered = '';
    let helloSeen = false;
    ch.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      if (!helloSeen) {
        const end = buffered.indexOf(']]>]]>');
        if (end < 0) return;
        helloSeen = true;
        buffered = buffered.slice(end + 6);
      }
      for (;;) {
        const m = /\n#\d+\n([\s\S]*?)\n##\n/.exec(buffered);
        if (!m) break;
        buffered = buffered.slice(m.index + m[0].length);
        const id = /message-id="([^"]+)"/.exec(m[1]!)?.[1] ?? '0';
        ch.write(chunked(`<rpc-reply message-id="${id}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data>${payload}</data></rpc-reply>`));
      }
    });
  };
}

async function setup(
  t: { teardown(fn: () => unknown): void },
  device: ScriptedDevice,
  extra: Array<{ id: string; device: ScriptedDevice }> = [],
  sessions?: string,
): Promise<TestGateway> {
  // Only edge-1 calls home: the extra devices stay offline unless a test calls them.
  return withGateway(t, { devices: [{ id: 'edge-1', device, ...(sessions ? { sessions } : {}) }, ...extra], connect: ['edge-1'], users: USERS });
}

test('password and public-key clients reach the device on the shared port; bytes arrive unchanged', async (t) => {
  const payload = randomBytes(48 * 1024).toString('base64');
  const device = new ScriptedDevice({ onNetconf: replyingDevice(payload) });
  const gw = await setup(t, device);
  for (const auth of [{ password: 'alice-pw' }, { privateKey: managerKey.private }]) {
    const s = await managerSession(t, gw, 'alice@edge-1', auth);
    const { client } = s;
    await s.waitFor('</hello>]]>]]>');
    t.true(s.received().toString().startsWith(NETCONF_HELLO), 'the device hello arrives byte for byte');
    s.channel.write(CLIENT_HELLO_11 + chunked('<rpc message-id="42" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-config><source><running/></source></get-config></rpc>'));
    await s.waitFor('\n##\n');
    const expected = NETCONF_HELLO + chunked(`<rpc-reply message-id="42" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data>${payload}</data></rpc-reply>`);
    t.is(s.received().toString(), expected);
    client.end();
  }
  await waitFor('rpc histogram', async () => (await gw.metric('callhome_rpc_duration_seconds_count{operation="get-config"}')) === 2, { timeoutMs: 5000 });
  t.is(await gw.metric('callhome_client_sessions_total{result="ok"}'), 2);
  t.is(await gw.metric('callhome_netconf_messages_total{direction="to_client"}'), 4);
  t.is(await gw.metric('callhome_netconf_messages_total{direction="to_device"}'), 4);
  t.true((await gw.metric('callhome_netconf_bytes_total{direction="to_client"}')) > 2 * payload.length);
});

test('refusals are clean: wrong password, not allowed, unknown device, no device named, offline device', async (t) => {
  const device = new ScriptedDevice();
  const offline = new ScriptedDevice();
  const gw = await setup(t, device, [{ id: 'edge-2', device: offline }]);
  const channelsAtConnect = device.channels; // the device's first session (held) and the probe of a second
  await t.throwsAsync(connectManager(gw.northboundPort, 'alice@edge-1', { password: 'nope' }), { message: /authentication methods failed/ });
  await waitFor('auth_failed counted', async () => (await gw.metric('callhome_client_sessions_total{result="auth_failed"}')) === 1, { timeoutMs: 5000 });

  const cases: Array<[string, string, RegExp, string]> = [
    ['bob@edge-1', 'bob-pw', /does not exist or user bob may not reach it/, 'denied'],
    ['alice@edge-9', 'alice-pw', /does not exist or user alice may not reach it/, 'denied'],
    ['alice', 'alice-pw', /log in as <user>@<device>/, 'denied'],
    ['alice@edge-2', 'alice-pw', /edge-2 is not connected/, 'device_unavailable'],
  ];
  for (const [user, password, reason] of cases) {
    const s = await managerSession(t, gw, user, { password });
    const { client } = s;
    const { code } = await s.closed;
    t.is(code, 1, user);
    t.regex(s.stderr(), reason);
    t.is(s.stderr().trim().split('\n').length, 1);
    client.end();
  }
  t.is(await gw.metric('callhome_client_sessions_total{result="denied"}'), 3);
  t.is(await gw.metric('callhome_client_sessions_total{result="device_unavailable"}'), 1);
  t.is(device.channels, channelsAtConnect, 'no refused client opened a channel on the device');
});

test('a device listed with sessions: multiple that refuses the channel gives the client a clean failure', async (t) => {
  let first = true;
  const device = new ScriptedDevice({
    onNetconf: (ch) => {
      if (first) {
        first = false;
        ch.write(NETCONF_HELLO);
        return;
      }
      ch.close();
    },
  });
  const gw = await setup(t, device, [], 'multiple');
  const s = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = s;
  await s.closed;
  client.end();
  t.pass('the client session ended instead of hanging');
  t.is((await gw.get<{ state: string }>('/api/devices/edge-1')).body.state, 'connected');
});

test('malformed framing closes that splice with a logged reason; another session on the device goes on', async (t) => {
  const device = new ScriptedDevice({ onNetconf: replyingDevice('ok') });
  const gw = await setup(t, device);
  const good = await openNetconf(await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' }));
  const bad = await openNetconf(await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' }));
  await Promise.all([good.waitFor(']]>]]>'), bad.waitFor(']]>]]>')]);
  good.channel.write(CLIENT_HELLO_11);
  bad.channel.write(CLIENT_HELLO_11 + '\n#0abc\n');
  await bad.closed;
  t.regex(bad.stderr(), /chunk/i);
  await gw.waitForLog(/GW_ERR_FRAMING/);
  good.channel.write(chunked('<rpc message-id="7" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'));
  await good.waitFor('message-id="7"');
  t.pass();
  good.client.end();
  bad.client.end();
});

test('the device hanging up closes every client session on it', async (t) => {
  const device = new ScriptedDevice({ onNetconf: replyingDevice('x') });
  const gw = await setup(t, device);
  const sessions = await Promise.all([1, 2].map(async () => openNetconf(await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' }))));
  await Promise.all(sessions.map((s) => s.waitFor(']]>]]>')));
  t.is(await gw.metric('callhome_client_sessions_active'), 2);
  const started = Date.now();
  device.close();
  await Promise.all(sessions.map((s) => s.closed));
  t.log(`client sessions closed ${Date.now() - started} ms after the device hung up`);
  await waitFor('gauge back to 0', async () => (await gw.metric('callhome_client_sessions_active')) === 0, { timeoutMs: 5000 });
  t.is((await gw.get<{ state: string }>('/api/devices/edge-1')).body.state, 'disconnected');
  for (const s of sessions) s.client.end();
});

test('a per-device port routes by plain user name', async (t) => {
  const device = new ScriptedDevice({ onNetconf: replyingDevice('p') });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [], users: USERS });
  // A device port is a fixed number (0 is refused), so find a free one and add it by a reload.
  const port = await freePort();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(gw.inventoryFile, inventoryFor([{ id: 'edge-1', device, port }]));
  // Reload as SIGHUP does: the file poll's first stat may postdate this write on a busy
  // machine, and then it sees no change (test/hardening/reload covers the poll itself).
  t.true(await gw.gateway.reloadInventory());
  await waitFor('device port listening', () => gw.gateway.addresses().devicePorts.get('edge-1') === port, { timeoutMs: 8000 });
  await callHomeConnected(gw, device, 'edge-1');
  t.is((await gw.get<{ port: number }>('/api/devices/edge-1')).body.port, port);
  const s = await openNetconf(await connectManager(port, 'alice', { password: 'alice-pw' }));
  s.channel.write(CLIENT_HELLO_11 + chunked('<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'));
  await s.waitFor('<data>p</data>');
  t.pass();
  s.client.end();
});

test('shell, exec and port forwarding are refused: the endpoint speaks NETCONF only', async (t) => {
  const device = new ScriptedDevice();
  const gw = await setup(t, device);
  const client = await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' });
  t.teardown(() => client.end());
  await t.throwsAsync(new Promise((resolve, reject) => client.exec('id', (err, ch) => (err ? reject(err) : resolve(ch)))));
  await t.throwsAsync(new Promise((resolve, reject) => client.shell((err, ch) => (err ? reject(err) : resolve(ch)))));
  await t.throwsAsync(new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 0, '127.0.0.1', gw.httpPort, (err, ch) => (err ? reject(err) : resolve(ch)))));
  await t.throwsAsync(new Promise((resolve, reject) => client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch)))));
});
