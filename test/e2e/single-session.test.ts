// An SSH call-home device listed with `sessions: single` (one that allows one NETCONF
// session only): the gateway holds that session and lends it to managers one at a time,
// as it does for TLS devices. Real peers: sshd -i + netconfd, ncclient, OpenSSH.
import anyTest from 'ava';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { CAP_BASE_11, CallHomeDevice, assertNcOk, ensureNetconfd, generateKeyPair, makeTempDir, requirePeers, runNcclient, runOpenSshNetconf, type NcJob } from './peers/index.js';

const test = requirePeers(anyTest);

let gw: TestGateway;
let device: CallHomeDevice;
/** An OpenSSH device that allows one session channel per connection (MaxSessions 1), on the defaults. */
let oneChannel: CallHomeDevice;
let manager: { privateKeyFile: string; publicKeyLine: string };

test.before(async () => {
  await ensureNetconfd();
  device = await CallHomeDevice.create({ name: 'single' });
  oneChannel = await CallHomeDevice.create({ name: 'maxsessions1', extraConfig: ['MaxSessions 1'] });
  manager = await generateKeyPair(path.join(makeTempDir('chgw-single'), 'id_ed25519'), 'alice@laptop');
  gw = await startGateway({
    inventory:
      `devices:\n  - id: single-1\n    ssh: { hostKeys: ["${device.hostPublicKeyLine}"] }\n    credentials: { username: ${device.username}, privateKeyFile: ${device.privateKeyFile} }\n    sessions: single\n` +
      `  - id: one-channel\n    ssh: { hostKeys: ["${oneChannel.hostPublicKeyLine}"] }\n    credentials: { username: ${oneChannel.username}, privateKeyFile: ${oneChannel.privateKeyFile} }\n`,
    users: `users:\n  - name: alice\n    password: alice-pw\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`,
  });
  device.callHome('127.0.0.1', gw.callhomePort);
  oneChannel.callHome('127.0.0.1', gw.callhomePort);
  await deviceConnected(gw, 'single-1', 20_000);
  await deviceConnected(gw, 'one-channel', 20_000);
});

test.after.always(async () => {
  await gw?.close();
  await device?.dispose();
  await oneChannel?.dispose();
});

const job = (extra: Partial<NcJob>): NcJob => ({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@single-1', password: 'alice-pw', steps: [], ...extra });

test.serial('managers one after another share the one held session; OpenSSH at base:1.0 is re-framed; a concurrent one is refused as busy', async (t) => {
  const first = await runNcclient(job({ steps: [{ op: 'get-config', source: 'running' }], end: 'close-session' }));
  assertNcOk(first);
  t.true(first.serverCapabilities.includes(CAP_BASE_11));
  const ssh = await runOpenSshNetconf({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@single-1', identityFile: manager.privateKeyFile });
  t.is(ssh.code, 0, ssh.stderr);
  t.regex(ssh.replies[0] ?? '', /<rpc-reply[^>]*message-id="101"[\s\S]*<data/);
  t.notRegex(ssh.stdout, /\n#\d+\n/);
  let connected!: () => void;
  const holding = new Promise<void>((r) => (connected = r));
  const second = runNcclient(
    job({
      onEvent: (e) => e.type === 'connected' && connected(),
      steps: [
        { op: 'sleep', seconds: 2 },
        { op: 'get-config', source: 'running' },
      ],
    }),
  );
  await holding;
  const busy = await runOpenSshNetconf({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@single-1', identityFile: manager.privateKeyFile, timeoutMs: 10_000 });
  t.regex(busy.stderr, /busy/);
  const r = await second;
  assertNcOk(r);
  t.is(r.sessionId, first.sessionId, 'the same NETCONF session on the device');
  t.true((await gw.metric('callhome_held_session_lends_total{transport="ssh"}')) >= 3);
  t.is(await gw.metric('callhome_held_session_busy_total{transport="ssh"}'), 1);
});

test.serial('on the defaults (sessions: auto), a device that refuses a second channel falls back to lending its held session, and says why', async (t) => {
  const view = (await gw.get<{ sessionMode: string; sessionModeReason: string }>('/api/devices/one-channel')).body;
  t.is(view.sessionMode, 'single');
  t.regex(view.sessionModeReason, /refused a second netconf channel/);
  const single = (await gw.get<{ sessionMode: string; sessionModeReason: string }>('/api/devices/single-1')).body;
  t.deepEqual([single.sessionMode, single.sessionModeReason], ['single', 'inventory: sessions: single']);
  const first = await runNcclient(job({ username: 'alice@one-channel', steps: [{ op: 'get-config', source: 'running' }], end: 'close-session' }));
  assertNcOk(first);
  const second = await runNcclient(job({ username: 'alice@one-channel', steps: [{ op: 'get-config', source: 'running' }] }));
  assertNcOk(second);
  t.is(second.sessionId, first.sessionId, "both lent the device's one NETCONF session");
});
