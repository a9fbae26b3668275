// How a device's session mode is chosen and remembered across its connections (in-process
// ssh2 devices: the paths that need a device to misbehave on cue).
import test from 'ava';
import type { Socket } from 'node:net';
import { deviceConnected, withGateway } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { NETCONF_HELLO, ScriptedDevice } from '../helpers/ssh-device.js';

const USERS = 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n';
type View = { state: string; sessionMode: string | null; sessionModeReason: string | null; reconnects: number };

test('a device that hangs up when the probe session ends gets the single mode from its next connection, without a probe', async (t) => {
  let socket: Socket | undefined;
  const perConnection: number[] = [];
  const device = new ScriptedDevice({
    onNetconf: (ch) => {
      perConnection[perConnection.length - 1]!++;
      ch.write(NETCONF_HELLO);
      // the second session's end takes the whole connection with it
      ch.on('data', () => {}); // read, so that the channel's close is seen
      if (perConnection[perConnection.length - 1] === 2) ch.once('close', () => socket?.destroy());
    },
  });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [], users: USERS });
  const view = async () => (await gw.get<View>('/api/devices/edge-1')).body;
  perConnection.push(0);
  socket = await device.callHome(gw.callhomePort);
  await waitFor('first connection', async () => (await view()).sessionMode === 'multiple', { timeoutMs: 10_000 });
  await waitFor('the device to hang up after the probe', async () => (await view()).state === 'disconnected', { timeoutMs: 10_000 });
  perConnection.push(0);
  socket = await device.callHome(gw.callhomePort);
  const v = await deviceConnected<View>(gw, 'edge-1');
  t.is(v.sessionMode, 'single');
  t.regex(v.sessionModeReason ?? '', /ended its connection \d+ ms after a second NETCONF session ended/);
  t.is(v.reconnects, 1);
  t.deepEqual(perConnection, [2, 1], 'no second channel on the second connection');
});

test('a device that accepted the probe is not probed again when it calls back', async (t) => {
  const perConnection: number[] = [];
  const device = new ScriptedDevice({
    onNetconf: (ch) => {
      perConnection[perConnection.length - 1]!++;
      ch.write(NETCONF_HELLO);
    },
  });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [], users: USERS });
  for (let i = 0; i < 2; i++) {
    perConnection.push(0);
    await device.callHome(gw.callhomePort);
    await waitFor(
      `connection ${i + 1}`,
      async () => (await gw.get<View>('/api/devices/edge-1')).body.reconnects === i && gw.gateway.registry.get('edge-1')?.sessionMode.mode === 'multiple',
      { timeoutMs: 10_000 },
    );
  }
  const v = (await gw.get<View>('/api/devices/edge-1')).body;
  t.deepEqual(perConnection, [2, 1]);
  t.regex(v.sessionModeReason ?? '', /accepted a second NETCONF session .*on an earlier connection/);
});
