// Call-home side of the gateway over real loopback sockets, with scripted ssh2 devices for
// the paths a real device cannot be made to take. The real-device path is in test/e2e.
import test from 'ava';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { startGateway } from './helpers/gateway.js';
import { callHomeConnected, deviceConnected, withGateway } from './helpers/fixture.js';
import { waitFor } from './helpers/wait.js';
import { ScriptedDevice, inventoryFor } from './helpers/ssh-device.js';

type DeviceView = { id: string; state: string; remotePort?: number; capabilities: string[]; connectedAt: string | null };
type Pending = { fingerprint: string; keyType: string; remoteAddress: string; attempts: number; firstSeen: string; lastSeen: string };

test('a known device is logged in to with its own credentials and its capabilities are listed', async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [] });
  await device.callHome(gw.callhomePort);
  const view = await deviceConnected<DeviceView>(gw, 'edge-1');
  t.deepEqual(view.capabilities, ['urn:ietf:params:netconf:base:1.0', 'urn:ietf:params:netconf:base:1.1']);
  t.truthy(view.connectedAt);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="accepted"}'), 1);
  t.is(await gw.metric('callhome_devices_connected{transport="ssh"}'), 1);
  t.true((await gw.metrics()).includes('callhome_handshake_duration_seconds_count{transport="ssh"} 1'));
  t.is((await gw.get('/api/devices/nope')).status, 404);
});

test('an unknown host key is refused before any credential is sent, and listed as pending', async (t) => {
  const known = new ScriptedDevice();
  const stranger = new ScriptedDevice();
  const gw = await startGateway({ inventory: inventoryFor([{ id: 'edge-1', device: known }]) });
  t.teardown(() => (known.close(), stranger.close(), gw.close()));
  await stranger.callHome(gw.callhomePort);
  await waitFor('pending entry', async () => (await gw.get<Pending[]>('/api/pending')).body.length === 1, { timeoutMs: 5000 });
  await stranger.callHome(gw.callhomePort);
  const pending = await waitFor('a second attempt of the pending device', async () => {
    const list = (await gw.get<Pending[]>('/api/pending')).body;
    return list[0]?.attempts === 2 ? list : undefined;
  });
  t.is(pending[0]!.fingerprint, stranger.fingerprint);
  t.is(pending[0]!.keyType, 'ssh-ed25519');
  t.is(pending[0]!.remoteAddress, '127.0.0.1');
  t.is(stranger.authAttempts, 0, 'no credential may reach an unknown device');
  await waitFor('the gateway to close the connection', () => stranger.openConnections === 0, { timeoutMs: 5000 });
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}'), 2);
  t.is((await gw.get<DeviceView>('/api/devices/edge-1')).body.state, 'disconnected');
});

test('wrong device credentials: auth_failed, not connected', async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device, password: 'wrong' }], connect: [] });
  await device.callHome(gw.callhomePort);
  await waitFor('auth_failed', async () => (await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}')) === 1, { timeoutMs: 5000 });
  t.is((await gw.get<DeviceView>('/api/devices/edge-1')).body.state, 'disconnected');
  t.true(device.authAttempts >= 1);
  t.false(
    gw.logs.some((l) => l.includes('wrong')),
    'the password must not be logged',
  );
});

test('a device whose hello is not NETCONF, or never comes, is disconnected with a reason', async (t) => {
  const babbler = new ScriptedDevice({ onNetconf: (ch) => ch.write('HTTP/1.1 200 OK\r\n\r\n<html></html>]]>]]>') });
  const mute = new ScriptedDevice({ onNetconf: () => {} });
  const gw = await withGateway(t, {
    devices: [
      { id: 'babbler', device: babbler },
      { id: 'mute', device: mute },
    ],
    connect: [],
    env: { CHGW_CALLHOME_HELLOTIMEOUT: '0.5' },
  });
  await babbler.callHome(gw.callhomePort);
  await mute.callHome(gw.callhomePort);
  await gw.waitForLog(/GW_ERR_NOT_NETCONF.*did not send a NETCONF <hello>/);
  await gw.waitForLog(/GW_ERR_TIMEOUT.*no <hello> from the device within 0.5s/);
  await waitFor('both closed', () => babbler.openConnections === 0 && mute.openConnections === 0, { timeoutMs: 5000 });
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="handshake_failed"}'), 1);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="timeout"}'), 1);
  t.is(await gw.metric('callhome_devices_connected{transport="ssh"}'), 0);
});

test('garbage and silence on the call-home port are dropped, and a real device still gets in', async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [], env: { CHGW_CALLHOME_LOGINGRACETIME: '1' } });
  const garbage = net.connect(gw.callhomePort, '127.0.0.1');
  garbage.on('error', () => {});
  garbage.resume();
  garbage.write(randomBytes(4096));
  const silent = net.connect(gw.callhomePort, '127.0.0.1');
  silent.on('error', () => {});
  silent.resume();
  const closed = (s: net.Socket) =>
    new Promise<number>((resolve) => {
      const start = Date.now();
      s.once('close', () => resolve(Date.now() - start));
    });
  const [, silentMs] = await Promise.all([closed(garbage), closed(silent), device.callHome(gw.callhomePort)]);
  t.true(silentMs < 5000, `silent connection closed after ${silentMs} ms`);
  await deviceConnected(gw, 'edge-1', 5000);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="handshake_failed"}'), 1);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="timeout"}'), 1);
});

test('the same device calling again replaces its older connection', async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [] });
  const first = await device.callHome(gw.callhomePort);
  await deviceConnected(gw, 'edge-1');
  const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
  await device.callHome(gw.callhomePort);
  await firstClosed;
  await gw.waitForLog(/GW_ERR_REPLACED/);
  t.is((await gw.get<DeviceView>('/api/devices/edge-1')).body.state, 'connected');
  t.is(await gw.metric('callhome_devices_connected{transport="ssh"}'), 1);
  t.is(gw.gateway.registry.size, 1);
});

test('removing a device from the inventory file disconnects it', async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }] });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(gw.inventoryFile, 'devices: []\n');
  await waitFor('the removed device to be disconnected', () => device.openConnections === 0, { timeoutMs: 8000 });
  t.is((await gw.get('/api/devices/edge-1')).status, 404);
  t.truthy(gw.logs.find((l) => l.includes('GW_ERR_REMOVED')));
});

test('close() with a device connected ends the device connection and resolves', async (t) => {
  const device = new ScriptedDevice();
  const gw = await startGateway({ inventory: inventoryFor([{ id: 'edge-1', device }]) });
  t.teardown(() => device.close());
  await callHomeConnected(gw, device, 'edge-1');
  await gw.close();
  t.is(gw.gateway.state, 'closed');
  await waitFor('the device connection to end', () => device.openConnections === 0, { timeoutMs: 5000 });
  await t.throwsAsync(fetch(`http://127.0.0.1:${gw.httpPort}/healthz`));
});

test('health and readiness', async (t) => {
  const gw = await startGateway();
  t.is((await gw.get('/healthz')).status, 200);
  t.is((await gw.get('/readyz')).status, 200);
  await gw.close();
  t.is(gw.gateway.state, 'closed');
});
