// Liveness with real peers: a device whose path goes silent (sshd -i frozen with SIGSTOP, so
// TCP stays up and nothing answers) is declared gone within interval × (countMax + 1); the
// device's own keepalives (OpenSSH ClientAlive*) are answered; a manager that vanishes frees
// its device channel; a device calling again replaces its old connection at once.
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { BIN, CallHomeDevice, EOM, HELLO_BASE10, ensureNetconfd, generateKeyPair, makeTempDir, requirePeers, runNcclient, sshArgs } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);

type View = {
  id: string;
  state: string;
  sessions: number;
  connectedAt: string | null;
  reconnects: number;
  lastDisconnects: Array<{ at: string; reason: string; message: string }>;
};

// Test-only: far below the public floor of 10 s, so the bound is measured in seconds.
const INTERVAL = 1;
const COUNT_MAX = 2;

let fast: TestGateway; // short keepalives both ways
let slow: TestGateway; // default keepalives: the device's own probes are what keeps it busy
let frozen: CallHomeDevice;
let chatty: CallHomeDevice;
let twice: CallHomeDevice;
let manager: { privateKeyFile: string; publicKeyLine: string };
const devices: CallHomeDevice[] = [];

const inventory = (list: Array<[string, CallHomeDevice]>) =>
  'devices:\n' +
  list
    .map(([id, d]) => `  - id: ${id}\n    ssh: { hostKeys: [${d.hostKeyFingerprint}] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n`)
    .join('');
const users = () => `users:\n  - name: alice\n    password: alice-pw\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`;

test.before(async () => {
  await ensureNetconfd();
  [frozen, chatty, twice] = await Promise.all([
    CallHomeDevice.create({ name: 'frozen' }),
    // The device probes the gateway every second and drops it after one unanswered probe.
    CallHomeDevice.create({ name: 'chatty', extraConfig: ['ClientAliveInterval 1', 'ClientAliveCountMax 1'] }),
    CallHomeDevice.create({ name: 'twice' }),
  ]);
  devices.push(frozen, chatty, twice);
  manager = await generateKeyPair(path.join(makeTempDir('chgw-ka-manager'), 'id_ed25519'), 'alice@laptop');
  fast = await startGateway({
    inventory: inventory([
      ['frozen', frozen],
      ['twice', twice],
    ]),
    users: users(),
    tweak: (c) => {
      c.callhome.keepalive = { interval: INTERVAL, countMax: COUNT_MAX };
      c.northbound.keepalive = { interval: INTERVAL, countMax: COUNT_MAX };
    },
  });
  slow = await startGateway({ inventory: inventory([['chatty', chatty]]), users: users() });
});

test.after.always(async () => {
  await Promise.all([fast?.close(), slow?.close()]);
  await Promise.all(devices.map((d) => d.dispose()));
});

const view = async (gw: TestGateway, id: string) => (await gw.get<View>(`/api/devices/${id}`)).body;

test.serial('a frozen device (SIGSTOP) is declared gone within interval × (countMax + 1); its client is closed; API and metrics agree', async (t) => {
  frozen.callHome('127.0.0.1', fast.callhomePort);
  await deviceConnected(fast, 'frozen', 20_000);
  let inSleep: () => void;
  const sleeping = new Promise<void>((r) => (inSleep = r));
  const nc = runNcclient({
    host: '127.0.0.1',
    port: fast.northboundPort,
    username: 'alice@frozen',
    password: 'alice-pw',
    steps: [
      { op: 'get-config', source: 'running' },
      { op: 'sleep', seconds: 6 },
      { op: 'get-config', source: 'running' },
    ],
    timeout: 10,
    onEvent: (e) => e.type === 'step' && e.index === 0 && inSleep(),
  });
  await sleeping;
  t.is((await view(fast, 'frozen')).sessions, 1);
  const before = await fast.metric('callhome_device_disconnects_total{reason="keepalive_timeout"}');
  const frozenAt = Date.now();
  frozen.freeze();
  try {
    await waitFor('the frozen device to be declared gone', async () => (await view(fast, 'frozen')).state === 'disconnected', { timeoutMs: 15_000 });
    const ms = Date.now() - frozenAt;
    const bound = INTERVAL * (COUNT_MAX + 1) * 1000;
    t.log(`declared gone ${ms} ms after SIGSTOP (bound ${bound} ms + 500 ms scheduling slack)`);
    t.true(ms <= bound + 500, `${ms} ms`);
    t.true(ms >= INTERVAL * COUNT_MAX * 1000 - 100, `not before countMax probes went unanswered (${ms} ms)`);
    await waitFor('the client session to close', async () => (await fast.metric('callhome_client_sessions_active')) === 0, { timeoutMs: 3000 });
    t.is(await fast.metric('callhome_device_disconnects_total{reason="keepalive_timeout"}'), before + 1);
    const v = await view(fast, 'frozen');
    t.is(v.sessions, 0);
    t.is(v.lastDisconnects[0]?.reason, 'GW_ERR_KEEPALIVE_TIMEOUT');
    await fast.waitForLog(/"code":"GW_ERR_KEEPALIVE_TIMEOUT".*device disconnected: no answer to 2 keepalive requests/);
    const r = await nc;
    t.false(r.steps[2]?.ok ?? false, 'the get-config after the freeze cannot succeed');
  } finally {
    frozen.thaw();
  }
});

test.serial("the device's own keepalive@openssh.com probes are answered (sshd ClientAliveInterval 1, CountMax 1)", async (t) => {
  chatty.callHome('127.0.0.1', slow.callhomePort);
  await deviceConnected(slow, 'chatty', 20_000);
  const first = await view(slow, 'chatty');
  // Five probe intervals with no traffic from the gateway but its answers.
  await new Promise((r) => setTimeout(r, 5000));
  const later = await view(slow, 'chatty');
  t.is(later.state, 'connected', JSON.stringify(later.lastDisconnects));
  t.is(later.connectedAt, first.connectedAt, 'the same connection, not a new one');
  t.is(chatty.liveConnections, 1);
  t.notRegex(chatty.sshdLog(), /Timeout, client not responding/);
});

test.serial('a manager that vanishes (ssh frozen with SIGSTOP) is dropped by northbound keepalives and frees its device channel', async (t) => {
  twice.callHome('127.0.0.1', fast.callhomePort);
  await deviceConnected(fast, 'twice', 20_000);
  const ssh = spawn(BIN.ssh, sshArgs({ host: '127.0.0.1', port: fast.northboundPort, username: 'alice@twice', identityFile: manager.privateKeyFile }), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  ssh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  ssh.stdin.write(HELLO_BASE10 + EOM);
  try {
    await waitFor('the device hello through ssh', () => out.includes(EOM), { timeoutMs: 15_000 });
    await waitFor('the session to count', async () => (await view(fast, 'twice')).sessions === 1, { timeoutMs: 5000 });
    const frozenAt = Date.now();
    ssh.kill('SIGSTOP');
    await waitFor('the device channel to be freed', async () => (await view(fast, 'twice')).sessions === 0, { timeoutMs: 15_000 });
    const ms = Date.now() - frozenAt;
    t.log(`client session freed ${ms} ms after the manager froze`);
    // ssh2's server resets its count on any packet; plus the splice's 2 s drain of the other direction.
    t.true(ms <= INTERVAL * (COUNT_MAX + 1) * 1000 + 2500, `${ms} ms`);
    await fast.waitForLog(/"code":"GW_ERR_KEEPALIVE_TIMEOUT".*client stopped answering keepalives/);
    t.is((await view(fast, 'twice')).state, 'connected', 'the device itself stays');
  } finally {
    ssh.kill('SIGKILL');
    ssh.kill('SIGCONT');
  }
});

test.serial('a device calling again while its old connection is alive replaces it at once; the old client is told why', async (t) => {
  await deviceConnected(fast, 'twice', 20_000);
  const old = await view(fast, 'twice');
  const ssh = spawn(BIN.ssh, sshArgs({ host: '127.0.0.1', port: fast.northboundPort, username: 'alice@twice', identityFile: manager.privateKeyFile }), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  ssh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  ssh.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => ssh.once('exit', (code) => r(code)));
  ssh.stdin.write(HELLO_BASE10 + EOM);
  try {
    await waitFor('the device hello through ssh', () => out.includes(EOM), { timeoutMs: 15_000 });
    const calledAt = Date.now();
    twice.callHome('127.0.0.1', fast.callhomePort);
    await waitFor(
      'the new connection to win',
      async () => {
        const v = await view(fast, 'twice');
        return v.state === 'connected' && v.connectedAt !== old.connectedAt;
      },
      { timeoutMs: 10_000 },
    );
    const ms = Date.now() - calledAt;
    t.log(`new connection in place ${ms} ms after the second call`);
    t.true(ms < INTERVAL * 1000 * (COUNT_MAX + 1) + 2000, 'no waiting for keepalives');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
    t.not(code, 'hung', 'the old client is closed');
    t.regex(err, /callhome-gateway: device twice called home again from 127\.0\.0\.1: its older connection was replaced/);
    const v = await view(fast, 'twice');
    t.true(v.reconnects >= 1);
    t.is(v.lastDisconnects[0]?.reason, 'GW_ERR_REPLACED');
    t.is(v.sessions, 0, 'clients of the old connection are gone');
    await waitFor('the old sshd -i to exit', () => twice.liveConnections === 1, { timeoutMs: 10_000 });
    t.true((await fast.metric('callhome_device_disconnects_total{reason="replaced"}')) >= 1);
  } finally {
    ssh.kill('SIGKILL');
  }
});
