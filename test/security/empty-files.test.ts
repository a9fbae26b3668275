// An empty inventory or users file (a truncating `cat >`, a full disk) is a bad file: on a
// reload the last good one stays in force, the reason is logged and counted; at start it is
// a configuration error (exit 2). An explicit `devices: []` / `users: []` still means none.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { callHomeConnected, managerSession } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice, inventoryFor } from '../helpers/ssh-device.js';
import { makeTempDir } from '../e2e/peers/index.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
let gw: TestGateway | undefined;
const device = new ScriptedDevice();
test.after.always(async () => {
  device.close();
  await gw?.close();
});

test.serial('truncated or keyless inventory and users files are rejected on reload; live devices and sessions stay; devices: [] still empties', async (t) => {
  const inventory = inventoryFor([{ id: 'edge-1', device }]);
  const users = 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n';
  gw = await startGateway({ inventory, users });
  const g = gw;
  await callHomeConnected(g, device, 'edge-1');
  const session = await managerSession(t, g, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = session;
  await session.waitFor('</hello>');
  let sessionClosed = false;
  void session.closed.then(() => (sessionClosed = true));
  t.is(await g.metric('callhome_config_reload_failures_total{file="inventory"}'), 0, 'exported at zero');
  t.is(await g.metric('callhome_config_reload_failures_total{file="users"}'), 0, 'exported at zero');

  const bad: Array<[string, RegExp]> = [
    ['', /the file is empty/],
    ['\n# only a comment\n', /the file is empty/],
    [inventory.split('\n')[0]!, /no \\"devices\\" list/], // "devices:" with the list cut off
    ['defaults:\n  credentials: { username: a, password: b }\n', /no \\"devices\\" list/],
  ];
  for (const [i, [text, why]] of bad.entries()) {
    writeFileSync(g.inventoryFile, text);
    t.false(await g.gateway.reloadInventory(), JSON.stringify(text));
    await g.waitForLog(why);
    // The file watcher may count the same bad file once more.
    t.true((await g.metric('callhome_config_reload_failures_total{file="inventory"}')) >= i + 1);
    t.is((await g.get<{ state: string }>('/api/devices/edge-1')).body.state, 'connected', 'the device stays connected');
  }
  for (const [i, text] of ['', 'users:\n'].entries()) {
    writeFileSync(g.usersFile, text);
    t.false(await g.gateway.reloadUsers());
    t.true((await g.metric('callhome_config_reload_failures_total{file="users"}')) >= i + 1);
  }
  await g.waitForLog(/users not reloaded.*no \\"users\\" list/);
  // The manager's session lives on, and still works.
  await new Promise((r) => setTimeout(r, 300));
  t.false(sessionClosed, 'the live session was not ended');
  t.is(g.gateway.registry.size, 1);

  // Explicitly empty lists still mean none.
  writeFileSync(g.usersFile, 'users: []\n');
  t.true(await g.gateway.reloadUsers());
  await waitFor('the session ended by users: []', () => sessionClosed, { timeoutMs: 10_000 });
  client.end();
  writeFileSync(g.inventoryFile, 'devices: []\n');
  t.true(await g.gateway.reloadInventory());
  await waitFor('edge-1 removed by devices: []', () => g.gateway.registry.size === 0, { timeoutMs: 10_000 });
});

test('an empty inventory or users file at start is a configuration error: exit 2, one line', (t) => {
  const dir = makeTempDir('chgw-empty');
  for (const which of ['inventory', 'users'] as const) {
    const inv = path.join(dir, `${which}-devices.yaml`);
    const usr = path.join(dir, `${which}-users.yaml`);
    writeFileSync(inv, which === 'inventory' ? '' : 'devices: []\n');
    writeFileSync(usr, which === 'users' ? '' : 'users: []\n');
    const env = {
      ...process.env,
      CHGW_INVENTORY_FILE: inv,
      CHGW_USERS_FILE: usr,
      CHGW_STATEDIR: path.join(dir, 'state'),
      CHGW_CALLHOME_SSH_PORT: '0',
      CHGW_CALLHOME_TLS_PORT: '0',
      CHGW_NORTHBOUND_PORT: '0',
      CHGW_HTTP_PORT: '0',
      CHGW_HTTP_HOST: '127.0.0.1',
      CHGW_LOG_LEVEL: 'silent',
    };
    const r = spawnSync(process.execPath, [CLI, 'run'], { env, encoding: 'utf8', timeout: 30_000 });
    t.is(r.status, 2, `${which}: ${r.stderr}`);
    t.regex(r.stderr, which === 'inventory' ? /inventory .*the file is empty \(write "devices: \[\]"/ : /users .*the file is empty \(write "users: \[\]"/);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});
