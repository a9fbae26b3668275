// The northbound side serves a client through LiveDevice.serveClient alone: a device of a
// kind it has never seen (as a device owned by another replica will be) is reached, counted,
// listed and ended by an operator like any other, and its refusal reaches the client.
import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import type { ClientSession, SessionResult } from '../../src/device/client.js';
import type { LiveDevice } from '../../src/device/live.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { managerSession } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice, inventoryFor } from '../helpers/ssh-device.js';

const USERS = `users:
  - name: alice
    password: alice-pw
    devices: ["far-*"]
`;

/** A device that is neither SSH nor TLS: it answers each client itself. */
class ElsewhereDevice implements LiveDevice {
  readonly transport = 'ssh' as const;
  readonly remoteAddress = '192.0.2.7';
  readonly connectedAt = new Date();
  readonly capabilities = ['urn:ietf:params:netconf:base:1.1'];
  readonly sessions = 0;
  readonly sessionMode = { mode: 'multiple' as const, reason: 'test' };
  private readonly abort = new AbortController();
  readonly served: ClientSession[] = [];
  constructor(
    readonly deviceId: string,
    private readonly serve: (client: ClientSession) => Promise<SessionResult>,
  ) {}
  get signal(): AbortSignal {
    return this.abort.signal;
  }
  serveClient(client: ClientSession): Promise<SessionResult> {
    this.served.push(client);
    return this.serve(client);
  }
  kill(reason: GatewayError): void {
    this.abort.abort(reason);
  }
}

async function gatewayWith(t: { teardown(fn: () => unknown): void }, device: ElsewhereDevice): Promise<TestGateway> {
  // The inventory names the device; it never calls home here, the registry gets it directly.
  const placeholder = new ScriptedDevice({});
  const gw = await startGateway({ inventory: inventoryFor([{ id: device.deviceId, device: placeholder }]), users: USERS });
  t.teardown(() => (placeholder.close(), gw.close()));
  gw.gateway.registry.add(device);
  t.teardown(() => device.kill(new GatewayError('GW_ERR_DEVICE_CLOSED', 'test over')));
  return gw;
}

test('a client reaches a device of another kind: its bytes arrive, the session is counted, listed and ended by the operator', async (t) => {
  const device = new ElsewhereDevice('far-1', (client) => {
    client.channel.write('<hello from far-1/>');
    return new Promise((resolve) => {
      client.started(
        'channel',
        () => ({ bytesToDevice: 1, bytesToClient: 2, rpcs: 3, denied: 0 }),
        (why) => {
          client.channel.close();
          resolve({ kind: 'ended', reason: why.code, message: why.message });
        },
      );
    });
  });
  const gw = await gatewayWith(t, device);
  const s = await managerSession(t, gw, 'alice@far-1', { password: 'alice-pw' });
  await s.waitFor('<hello from far-1/>');
  t.is(device.served[0]!.deviceId, 'far-1');
  t.is(await gw.metric('callhome_client_sessions_active'), 1);
  const list = (await gw.get<Array<{ id: string; device: string; user: string; kind: string; rpcs: number }>>('/api/sessions')).body;
  t.is(list.length, 1);
  t.like(list[0], { device: 'far-1', user: 'alice', kind: 'channel', rpcs: 3 });
  // The operator's end goes through the `end` the device gave.
  t.true(gw.gateway.sessions.kill(list[0]!.id, new GatewayError('GW_ERR_REMOVED', 'ended by the operator')));
  await s.closed;
  await waitFor('the session to be uncounted', async () => (await gw.metric('callhome_client_sessions_active')) === 0, { timeoutMs: 5000 });
  t.is(await gw.metric('callhome_client_sessions_total{result="ok"}'), 1);
  t.deepEqual((await gw.get<unknown[]>('/api/sessions')).body, []);
});

test('a refusal from the device reaches the client on stderr and is counted as that result', async (t) => {
  const device = new ElsewhereDevice('far-2', async () => ({ kind: 'refused', result: 'device_unavailable', reason: 'device far-2: busy elsewhere' }));
  const gw = await gatewayWith(t, device);
  const s = await managerSession(t, gw, 'alice@far-2', { password: 'alice-pw' });
  const { code } = await s.closed;
  t.is(code, 1);
  t.is(s.stderr(), 'callhome-gateway: device far-2: busy elsewhere\n');
  t.is(await gw.metric('callhome_client_sessions_total{result="device_unavailable"}'), 1);
  t.is(await gw.metric('callhome_client_sessions_total{result="ok"}'), 0);
});
