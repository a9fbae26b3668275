// northbound.portRange: devices without a `port:` get one from the range, kept in
// <stateDir>/device-ports.json across inventory changes, reconnects and restarts.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PortAssignments } from '../../src/northbound/port-assignments.js';
import { parseInventory } from '../../src/inventory/inventory.js';
import { createLogger } from '../../src/log.js';
import { SimulatedDevice } from '../../src/simulator/index.js';
import { startGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { connectManager, openNetconf } from '../helpers/ssh-manager.js';

const silent = createLogger('silent');
const entry = (id: string, extra = '') =>
  `  - id: ${id}\n    ssh: { hostKeys: ["SHA256:${id.padEnd(43, 'A').slice(0, 43)}"] }\n    credentials: { username: u, password: p }\n${extra}`;

test('assignments: stable across reloads and restarts, lowest free port, explicit ports respected, range reuse when full', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-ports-'));
  const inv = (...ids: string[]) => parseInventory('devices:\n' + ids.map((id) => entry(id)).join(''), 'x.yaml');
  const a = new PortAssignments(dir, [40000, 40002], silent);
  t.deepEqual(
    [...a.assign(inv('a', 'b'))],
    [
      ['a', 40000],
      ['b', 40001],
    ],
  );
  const onDisk = JSON.parse(readFileSync(path.join(dir, 'device-ports.json'), 'utf8')) as { ports: Record<string, number> };
  t.deepEqual(onDisk.ports, { a: 40000, b: 40001 });
  // A restart with a new device listed first: the old ones keep their ports.
  const b = new PortAssignments(dir, [40000, 40002], silent);
  t.deepEqual(Object.fromEntries(b.assign(inv('c', 'a', 'b'))), { a: 40000, b: 40001, c: 40002 });
  // A device with its own port inside the range takes precedence; the other one moves.
  const own = parseInventory('devices:\n' + entry('a') + entry('b') + entry('d', '    port: 40000\n'), 'x.yaml');
  const moved = b.assign(own);
  t.is(moved.get('d'), undefined, 'an explicit port is not assigned');
  t.false([...moved.values()].includes(40000));
  // Full range: a device that left the inventory gives its port up.
  const c = new PortAssignments(mkdtempSync(path.join(tmpdir(), 'chgw-ports-')), [40000, 40001], silent);
  c.assign(inv('a', 'b'));
  t.deepEqual(Object.fromEntries(c.assign(inv('a', 'e'))), { a: 40000, e: 40001 });
  t.deepEqual(Object.fromEntries(c.assign(inv('a', 'e', 'f'))), { a: 40000, e: 40001 }, 'no port left for f');
});

/** A run of free ports (bound and released at once), or undefined. */
async function freeRun(n: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const servers: net.Server[] = [];
    try {
      for (let p = base; p < base + n; p++) {
        const s = net.createServer();
        await new Promise<void>((resolve, reject) => s.once('error', reject).listen(p, '127.0.0.1', () => resolve()));
        servers.push(s);
      }
      return base;
    } catch {
      /* taken: try elsewhere */
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  }
  return undefined;
}

test('a gateway gives devices ports from the range, routes there, and keeps them after a restart', async (t) => {
  const base = (await freeRun(4))!;
  t.truthy(base);
  const range = `${base}-${base + 3}`;
  const stateDir = mkdtempSync(path.join(tmpdir(), 'chgw-ports-state-'));
  const dev = new SimulatedDevice({ id: 'ranged-1', password: 'pw-r1' });
  const other = new SimulatedDevice({ id: 'ranged-2', password: 'pw-r2' });
  const inv = (list: SimulatedDevice[]) =>
    'devices:\n' +
    list.map((d) => `  - id: ${d.id}\n    ssh: { hostKeys: ["${d.fingerprint}"] }\n    credentials: { username: ${d.username}, password: "${d.password}" }\n`).join('');
  const users = 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n';
  const env = { CHGW_STATEDIR: stateDir, CHGW_NORTHBOUND_PORTRANGE: range };

  const gw1 = await startGateway({ inventory: inv([dev, other]), users, env });
  const ports1 = (await gw1.get<Array<{ id: string; port: number }>>('/api/devices')).body;
  const portOf = (list: Array<{ id: string; port: number }>, id: string) => list.find((d) => d.id === id)!.port;
  t.is(portOf(ports1, 'ranged-1'), base);
  t.is(portOf(ports1, 'ranged-2'), base + 1);
  t.true(existsSync(path.join(stateDir, 'device-ports.json')));

  // The assigned port is a working per-device endpoint: plain user name, no @device.
  await dev.connect('127.0.0.1', gw1.callhomePort);
  await deviceConnected(gw1, 'ranged-1');
  const client = await connectManager(base, 'alice', { password: 'alice-pw' });
  const s = await openNetconf(client);
  await s.waitFor(']]>]]>');
  t.true(s.received().toString().includes('urn:ietf:params:netconf:base:1.1'), 'the device hello arrives on the assigned port');
  client.end();
  await dev.close();
  await gw1.close();

  // Restart with a new device listed first and the order changed: the ports stay.
  const third = new SimulatedDevice({ id: 'ranged-0', password: 'pw-r0' });
  const gw2 = await startGateway({ inventory: inv([third, other, dev]), users, env });
  t.teardown(() => gw2.close());
  const ports2 = (await gw2.get<Array<{ id: string; port: number }>>('/api/devices')).body;
  t.is(portOf(ports2, 'ranged-1'), base);
  t.is(portOf(ports2, 'ranged-2'), base + 1);
  t.is(portOf(ports2, 'ranged-0'), base + 2);
  t.deepEqual([...gw2.gateway.addresses().devicePorts].sort(), [
    ['ranged-0', base + 2],
    ['ranged-1', base],
    ['ranged-2', base + 1],
  ]);
});
