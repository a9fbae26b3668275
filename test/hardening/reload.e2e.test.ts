// Hot reload with real devices and a real manager: editing the inventory adds a device
// (accepted at its next call), removes one (disconnected), rotates host keys (two listed
// keys both work, then the old one is refused); a broken file is rejected whole and the
// last good one stays; narrowing a user's device glob ends that user's live session.
import anyTest from 'ava';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { CallHomeDevice, ensureNetconfd, requirePeers, runNcclient } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);

let gw: TestGateway;
let a: CallHomeDevice;
let b: CallHomeDevice;

type View = { id: string; state: string; remoteAddress: string | null };
const state = async (id: string) => (await gw.get<View>(`/api/devices/${id}`)).body.state;
const creds = (d: CallHomeDevice) => `{ username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }`;
const USERS = (glob: string) => `users:\n  - name: alice\n    password: alice-pw\n    devices: ["${glob}"]\n`;

test.before(async () => {
  await ensureNetconfd();
  [a, b] = await Promise.all([CallHomeDevice.create({ name: 'reload-a' }), CallHomeDevice.create({ name: 'reload-b' })]);
  // The same login works on both, so they can stand for one device before and after it
  // rotates its host key.
  appendFileSync(path.join(b.dir, 'authorized_keys'), a.clientPublicKeyLine + '\n');
  gw = await startGateway({ inventory: 'devices: []\n', users: USERS('*') });
  a.persistent('127.0.0.1', gw.callhomePort, { pauseMs: 300 });
  b.persistent('127.0.0.1', gw.callhomePort, { pauseMs: 300 });
});

test.after.always(async () => {
  await gw?.close();
  await Promise.all([a?.dispose(), b?.dispose()]);
});

async function edit(text: string, expectLog: RegExp): Promise<void> {
  const mark = gw.logs.length;
  writeFileSync(gw.inventoryFile, text);
  await waitFor(`log ${expectLog}`, () => gw.logs.slice(mark).some((l) => expectLog.test(l)), { timeoutMs: 10_000 });
}

test.serial('add, rotate, break and remove by editing the inventory file', async (t) => {
  // add: both keys listed for one id (rotation window): whichever calls is that device
  const since = [a.sshdLogOffset(), b.sshdLogOffset()];
  await edit(`devices:\n  - id: rot\n    ssh: { hostKeys: [${a.hostKeyFingerprint}, ${b.hostKeyFingerprint}] }\n    credentials: ${creds(a)}\n`, /inventory reloaded/);
  await deviceConnected(gw, 'rot', 20_000);
  // Each logs the gateway in: the two host keys were both accepted as "rot".
  await a.waitForSshdLog(/Accepted publickey/, { since: since[0], timeoutMs: 20_000 });
  await b.waitForSshdLog(/Accepted publickey/, { since: since[1], timeoutMs: 20_000 });
  t.false((await gw.get<Array<{ fingerprint: string }>>('/api/pending')).body.some((p) => [a.hostKeyFingerprint, b.hostKeyFingerprint].includes(p.fingerprint)));

  // rotate: only b's key now. a (with its old key) is refused at its next call.
  const unknownBefore = await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}');
  await edit(`devices:\n  - id: rot\n    ssh: { hostKeys: [${b.hostKeyFingerprint}] }\n    credentials: ${creds(a)}\n`, /inventory reloaded/);
  await waitFor(
    'the old key refused and pending',
    async () => (await gw.get<Array<{ fingerprint: string }>>('/api/pending')).body.some((p) => p.fingerprint === a.hostKeyFingerprint),
    { timeoutMs: 20_000 },
  );
  t.true((await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) > unknownBefore);
  await deviceConnected(gw, 'rot', 20_000);

  // break: rejected whole, the last good one stays in force
  await edit(`devices:\n  - id: rot\n    ssh: { hostKeys: [not-a-key] }\n  - id: extra\n`, /inventory not reloaded, the previous one stays in force/);
  t.is(await state('rot'), 'connected');
  t.is((await gw.get('/api/devices/extra')).status, 404);
  const reason = gw.logs.find((l) => /inventory not reloaded/.test(l))!;
  t.regex(reason, /GW_ERR_INVENTORY/);

  // remove: disconnected at once
  await edit('devices: []\n', /inventory reloaded/);
  await waitFor('removed device disconnected', () => gw.logs.some((l) => /"code":"GW_ERR_REMOVED".*device disconnected/.test(l)), { timeoutMs: 10_000 });
  t.is((await gw.get('/api/devices/rot')).status, 404);
});

test.serial("narrowing a user's device glob ends that user's live session", async (t) => {
  await edit(`devices:\n  - id: live-a\n    ssh: { hostKeys: [${a.hostKeyFingerprint}] }\n    credentials: ${creds(a)}\n`, /inventory reloaded/);
  await deviceConnected(gw, 'live-a', 20_000);
  let connected!: () => void;
  const sessionUp = new Promise<void>((r) => (connected = r));
  const job = runNcclient({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'alice@live-a',
    password: 'alice-pw',
    steps: [
      { op: 'get-config', source: 'running' },
      { op: 'sleep', seconds: 6 },
      { op: 'get-config', source: 'running' },
    ],
    onEvent: (e) => {
      if (e.type === 'step') connected();
    },
  });
  await Promise.race([sessionUp, new Promise((r) => setTimeout(r, 8000))]);
  const mark = gw.logs.length;
  writeFileSync(gw.usersFile, USERS('core-*'));
  await waitFor('users reloaded', () => gw.logs.slice(mark).some((l) => /users reloaded/.test(l)), { timeoutMs: 10_000 });
  const r = await job;
  t.false(r.ok, 'the session did not survive the narrowed glob');
  t.true(
    gw.logs.slice(mark).some((l) => /withdrawn by the users file/.test(l)),
    'ended with a logged reason',
  );
  t.regex(gw.logs.find((l) => /users reloaded/.test(l.toString()) && /"sessionsEnded":[1-9]/.test(l)) ?? '', /sessionsEnded/);
  writeFileSync(gw.usersFile, USERS('*'));
});
