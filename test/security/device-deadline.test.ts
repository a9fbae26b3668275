// Every step from TCP accept to the device's <hello> has a deadline, the channel open
// included: a known device that logs in and then never answers the gateway's session
// channel open is cut at callhome.helloTimeout, counted as result="timeout", and its
// per-source admission slot is freed, so a real device from the same address gets in.
import test from 'ava';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { callHomeConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice } from '../helpers/ssh-device.js';

let gw: TestGateway | undefined;
const devices: ScriptedDevice[] = [];
test.after.always(async () => {
  for (const d of devices) d.close();
  await gw?.close();
});

test('devices that log in but never answer the channel open are cut at helloTimeout and free their slots', async (t) => {
  const stuck = new ScriptedDevice({ ignoreChannelOpen: true });
  const stuckSingle = new ScriptedDevice({ ignoreChannelOpen: true });
  const good = new ScriptedDevice();
  devices.push(stuck, stuckSingle, good);
  const entry = (id: string, d: ScriptedDevice, extra = '') =>
    `  - id: ${id}\n    ssh: { hostKeys: ["${d.fingerprint}"] }\n    credentials: { username: ${d.username}, password: ${d.password} }\n${extra}`;
  gw = await startGateway({
    inventory: 'devices:\n' + entry('stuck', stuck) + entry('stuck-single', stuckSingle, '    sessions: single\n') + entry('good', good),
    env: { CHGW_CALLHOME_HELLOTIMEOUT: '1', CHGW_CALLHOME_LOGINGRACETIME: '60', CHGW_CALLHOME_PERSOURCEMAXSTARTUPS: '2' },
  });
  const g = gw;
  const started = Date.now();
  await Promise.all([stuck.callHome(g.callhomePort), stuckSingle.callHome(g.callhomePort)]);
  await waitFor('both stuck devices logged in to', () => stuck.authAttempts > 0 && stuckSingle.authAttempts > 0, { timeoutMs: 10_000 });
  // Both slots of this address are taken now; the deadline, not loginGraceTime (60 s), frees them.
  await waitFor('the gateway to cut both stuck devices', () => stuck.openConnections === 0 && stuckSingle.openConnections === 0, { timeoutMs: 15_000 });
  t.true(Date.now() - started < 15_000);
  t.is(await g.metric('callhome_connections_total{transport="ssh",result="timeout"}'), 2);
  await g.waitForLog(/"device":"stuck".*GW_ERR_TIMEOUT.*no <hello> from the device within 1s of login/);
  await g.waitForLog(/"device":"stuck-single".*GW_ERR_TIMEOUT/);
  t.is(g.gateway.registry.size, 0);

  await callHomeConnected(g, good, 'good');
  t.is(await g.metric('callhome_connections_total{transport="ssh",result="rejected_limit"}'), 0);
});
