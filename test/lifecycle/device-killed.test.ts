// A device process killed (SIGKILL) in the middle of a large reply: the client's session
// closes within a second, and the gateway keeps no channel, socket or timer
// of it. The device is the `simulate` command in its own process, so the kill is real.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../helpers/gateway.js';
import { deviceConnected, managerSession } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const EOM = ']]>]]>';
const HELLO_10 =
  '<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>' +
  '<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>' +
  EOM;
const GET_CONFIG = '<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-config><source><running/></source></get-config></rpc>' + EOM;

const countTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const countSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

test('a device killed mid large reply: the client session closes within 1 s; nothing is left behind', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-killed-'));
  const inventoryFile = path.join(dir, 'devices.yaml');
  const sim = (args: string[]) =>
    spawn(process.execPath, [CLI, 'simulate', '--count', '1', '--seed', 'killed-mid-reply', '--password', 'pw-k', '--keepalive', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  await new Promise((r) => sim(['--gateway', '127.0.0.1:1', '--write-inventory', inventoryFile, '--inventory-only']).once('exit', r));
  const inventory = readFileSync(inventoryFile, 'utf8');
  const id = /id: ([\w.-]+)/.exec(inventory)![1]!;
  const gw = await startGateway({ inventory, users: 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n' });
  t.teardown(() => gw.close());
  await new Promise((r) => setTimeout(r, 200));
  const timersBefore = countTimers();
  const socketsBefore = countSockets();

  const device = sim(['--gateway', `127.0.0.1:${gw.callhomePort}`, '--reply-size', '256M']);
  t.teardown(() => device.kill('SIGKILL'));
  await deviceConnected(gw, id, 20_000);

  const session = await managerSession(t, gw, `alice@${id}`, { password: 'alice-pw' });
  const { client } = session;
  session.channel.write(HELLO_10 + GET_CONFIG);
  await waitFor('the first megabytes of the reply', () => session.received().length > 4 * 1024 * 1024, { timeoutMs: 20_000 });
  const killedAt = Date.now();
  device.kill('SIGKILL');
  await session.closed;
  const ms = Date.now() - killedAt;
  t.log(`client channel closed ${ms} ms after SIGKILL, ${session.received().length} bytes of 256 MiB received`);
  t.true(ms < 1000, `${ms} ms`);
  t.false(session.received().includes(Buffer.from('</rpc-reply>')), 'the reply was cut, not completed');
  client.end();

  await waitFor('the device to be disconnected', async () => (await gw.get<{ state: string }>(`/api/devices/${id}`)).body.state === 'disconnected', { timeoutMs: 5000 });
  const t0 = Date.now();
  await waitFor('the splice to end', async () => (await gw.metric('callhome_client_sessions_active')) === 0, { timeoutMs: 5000 }).catch(() => undefined);
  t.log(`splice ended ${Date.now() - t0} ms after the device showed disconnected`);
  t.is(await gw.metric('callhome_client_sessions_active'), 0);
  t.is(gw.gateway.registry.size, 0);
  t.is(gw.gateway.inFlight.size, 0);
  await waitFor('sockets and timers back to their count before', () => countSockets() <= socketsBefore && countTimers() <= timersBefore, { timeoutMs: 5000 }).catch(
    () => undefined,
  );
  t.log(`timers ${timersBefore} -> ${countTimers()}, sockets ${socketsBefore} -> ${countSockets()}`);
  t.true(countTimers() <= timersBefore, `timers ${timersBefore} -> ${countTimers()}`);
  t.true(countSockets() <= socketsBefore, `sockets ${socketsBefore} -> ${countSockets()}`);
});
