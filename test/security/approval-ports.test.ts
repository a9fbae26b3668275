// Approvals never take a port the gateway itself needs: its own listeners (a restart would
// then fail to bind), ports inside northbound.portRange (another device's kept port), or
// another device's port. And an approval saved earlier with such a port never stops
// start-up: it is logged, the port is skipped, the gateway starts.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice, inventoryFor } from '../helpers/ssh-device.js';
import { freePort, makeTempDir } from '../e2e/peers/index.js';
import { approveViaApi } from './helpers.js';

const TOKEN = 'admin-token-for-ports-test';
const gateways: TestGateway[] = [];
const devices: ScriptedDevice[] = [];
const servers: net.Server[] = [];
test.after.always(async () => {
  for (const d of devices) d.close();
  for (const s of servers) s.close();
  for (const g of gateways) await g.close();
});

const approve = (g: TestGateway, fingerprint: string, body: unknown) => approveViaApi(g, TOKEN, fingerprint, body);

test.serial("approve refuses the gateway's own ports, portRange ports and another device's port (409)", async (t) => {
  const owner = new ScriptedDevice();
  const stranger = new ScriptedDevice();
  devices.push(owner, stranger);
  const rangeStart = await freePort();
  const ownerPort = await freePort();
  const g = await startGateway({
    inventory: inventoryFor([{ id: 'owner', device: owner, port: ownerPort }]),
    env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_NORTHBOUND_PORTRANGE: `${rangeStart}-${rangeStart + 3}` },
  });
  gateways.push(g);
  await stranger.callHome(g.callhomePort);
  await waitFor('the stranger pending', async () => (await g.get<Array<{ fingerprint: string }>>('/api/pending')).body.length === 1, { timeoutMs: 10_000 });
  const tlsPort = g.gateway.addresses().callhomeTls;
  const cases: Array<[number, RegExp]> = [
    [g.callhomePort, /SSH call-home port of this gateway/],
    [tlsPort, /TLS call-home port of this gateway/],
    [g.northboundPort, /northbound shared port of this gateway/],
    [g.httpPort, /HTTP port of this gateway/],
    [rangeStart + 2, /inside northbound\.portRange/],
    [ownerPort, /belongs to device owner/],
  ];
  for (const [port, why] of cases) {
    const r = await approve(g, stranger.fingerprint, { id: 'newcomer', credentials: { username: 'admin', password: 'x' }, port });
    t.is(r.status, 409, `port ${port}: ${r.text}`);
    t.regex(r.text, why);
  }
  t.is((await g.get(`/api/devices/newcomer`)).status, 404, 'nothing was approved');
  t.is((await fetch(`http://127.0.0.1:${g.httpPort}/healthz`)).status, 200);
  const free = await freePort();
  const ok = await approve(g, stranger.fingerprint, { id: 'newcomer', credentials: { username: 'admin', password: 'x' }, port: free });
  t.is(ok.status, 201, ok.text);
  await waitFor('the approved port listening', () => g.gateway.addresses().devicePorts.get('newcomer') === free, { timeoutMs: 10_000 });
  t.is(g.gateway.addresses().devicePorts.get('owner'), ownerPort, 'the owner keeps its port');
});

test.serial("saved approvals with the gateway's own port, a portRange port or a port in use never stop start-up", async (t) => {
  const dir = makeTempDir('chgw-approval-ports');
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir);
  const [callhome, northbound, http, busy, range] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  // Something else holds `busy`.
  const squatter = net.createServer();
  servers.push(squatter);
  await new Promise<void>((r) => squatter.listen(busy, '127.0.0.1', r));
  const fp = (c: string) => 'SHA256:' + c.repeat(43);
  const approval = (id: string, c: string, port: number) => ({
    id,
    fingerprint: fp(c),
    keyType: 'ssh-ed25519',
    credentials: { username: 'admin', password: 'x' },
    port,
    approvedAt: new Date().toISOString(),
  });
  writeFileSync(
    path.join(stateDir, 'approvals.json'),
    JSON.stringify({
      approved: [approval('on-callhome', 'A', callhome), approval('on-http', 'B', http), approval('on-busy', 'C', busy), approval('in-range', 'D', range)],
      rejected: [],
    }),
    { mode: 0o600 },
  );
  const device = new ScriptedDevice();
  devices.push(device);
  const g = await startGateway({
    inventory: inventoryFor([{ id: 'real', device }]),
    env: {
      CHGW_STATEDIR: stateDir,
      CHGW_CALLHOME_SSH_PORT: String(callhome),
      CHGW_NORTHBOUND_PORT: String(northbound),
      CHGW_HTTP_PORT: String(http),
      CHGW_NORTHBOUND_PORTRANGE: `${range}-${range}`,
    },
  });
  gateways.push(g);
  t.is(g.callhomePort, callhome);
  t.is(g.httpPort, http);
  await g.waitForLog(/"device":"on-callhome".*approved port \d+ not used: it is the SSH call-home port/);
  await g.waitForLog(/"device":"on-http".*approved port \d+ not used: it is the HTTP port/);
  await g.waitForLog(/"device":"in-range".*approved port \d+ not used: it is inside northbound\.portRange/);
  await g.waitForLog(/"device":"on-busy".*EADDRINUSE/);
  const views = (await g.get<Array<{ id: string; port: number | null; source: string }>>('/api/devices')).body;
  for (const id of ['on-callhome', 'on-http', 'on-busy', 'in-range']) t.is(views.find((v) => v.id === id)?.source, 'approval', `${id} kept`);
  t.is(views.find((v) => v.id === 'on-callhome')?.port, null);
  // The call-home port is the gateway's: a real device gets in on it.
  await device.callHome(callhome);
  await deviceConnected(g, 'real');
  t.is((await fetch(`http://127.0.0.1:${http}/readyz`)).status, 200);
});
