// The set-up most gateway tests share, said once: an in-process gateway (gateway.ts) with an
// inventory for the devices, the devices calling it home, a wait until each is connected,
// and a manager session on the northbound port; one teardown ends all of it.
import type { ExecutionContext } from 'ava';
import { startGateway, type GatewayOptions, type TestGateway } from './gateway.js';
import { inventoryFor, type ScriptedDevice } from './ssh-device.js';
import { connectManager, openNetconf, type ManagerSession } from './ssh-manager.js';
import { waitFor } from './wait.js';

type Teardown = Pick<ExecutionContext, 'teardown'>;
type InventoryEntry = Parameters<typeof inventoryFor>[0][number];

/** The parts of GET /api/devices/{id} that tests read most. */
export interface DeviceView {
  id: string;
  state: string;
  port: number | null;
  sessions: number;
  capabilities: string[];
  connectedAt: string | null;
  remoteAddress: string | null;
}

export interface FixtureOptions extends GatewayOptions {
  /** Scripted devices: listed in the inventory (unless `inventory` is given) and closed at the end. */
  devices?: InventoryEntry[];
  /** Ids of `devices` that call home before the gateway is handed over, connected; default all. */
  connect?: string[];
  /** Further things to close at the end, before the gateway (devices not in the inventory). */
  alsoClose?: Array<{ close(): unknown }>;
}

/**
 * Starts a gateway for `devices`, has them call home and waits until each is connected.
 * The devices and then the gateway are closed when the test ends.
 */
export async function withGateway(t: Teardown, options: FixtureOptions = {}): Promise<TestGateway> {
  const devices = options.devices ?? [];
  const gw = await startGateway({ ...options, inventory: options.inventory ?? (devices.length > 0 ? inventoryFor(devices) : undefined) });
  t.teardown(async () => {
    for (const d of devices) d.device.close();
    for (const c of options.alsoClose ?? []) await c.close();
    await gw.close();
  });
  const connect = options.connect ?? devices.map((d) => d.id);
  for (const id of connect) {
    const entry = devices.find((d) => d.id === id);
    if (!entry) throw new Error(`withGateway: no device ${id} to connect`);
    await entry.device.callHome(gw.callhomePort);
    await deviceConnected(gw, id);
  }
  return gw;
}

/** Waits until device `id` is connected (its API view says so) and returns that view. */
export function deviceConnected<V extends { state: string } = DeviceView>(gw: TestGateway, id: string, timeoutMs = 10_000): Promise<V> {
  return waitFor(
    `${id} connected`,
    async () => {
      const view = (await gw.get<V>(`/api/devices/${encodeURIComponent(id)}`)).body;
      return view.state === 'connected' ? view : undefined;
    },
    { timeoutMs },
  );
}

/** Has `device` call `gw` home and waits until it is connected as `id`. */
export async function callHomeConnected(gw: TestGateway, device: ScriptedDevice, id: string, timeoutMs?: number): Promise<DeviceView> {
  await device.callHome(gw.callhomePort);
  return deviceConnected(gw, id, timeoutMs);
}

/**
 * A manager logged in as `user` on the northbound port (or `port`), with its netconf
 * channel open; the connection ends when the test does.
 */
export async function managerSession(
  t: Teardown,
  gw: TestGateway,
  user: string,
  auth: { password?: string; privateKey?: string | Buffer },
  port = gw.northboundPort,
): Promise<ManagerSession> {
  const client = await connectManager(port, user, auth);
  t.teardown(() => client.end());
  return openNetconf(client);
}
