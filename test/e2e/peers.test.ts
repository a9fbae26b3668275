// Self-test of the real-peer harness on the direct path (no gateway): netconfd behind a
// dial-in sshd, driven by ncclient and by OpenSSH; and a call-home device reaching a bare
// TCP listener where an ssh2 Client does what the gateway will do.
import anyTest from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import {
  CAP_BASE_10,
  CAP_BASE_11,
  CAP_CANDIDATE,
  CallHomeDevice,
  EOM,
  HELLO_BASE10,
  NETCONFD_LOG_PATTERNS,
  NETCONFD_MODULES,
  NCXSERVER_SOCK,
  assertNcOk,
  describeNcResult,
  descendantGroups,
  ensureNetconfd,
  fingerprintOfKeyBlob,
  fingerprintOfPublicKeyLine,
  generateKeyPair,
  getConfigBody,
  groupAlive,
  interfaceConfig,
  interfaceDeleteConfig,
  interfaceFilter,
  lockedEditSteps,
  listenTcp,
  makeTempDir,
  netconfdLogOffset,
  pidAlive,
  requireDevicePassword,
  requirePeers,
  rpc,
  run,
  runNcclient,
  runOpenSshNetconf,
  uniqueIfName,
  waitFor,
  waitForNetconfdLog,
  waitForNetconfdSessionEnd,
  withTimeout,
  type DirectDaemon,
} from './peers/index.js';

const test = requirePeers(anyTest);
const { Client } = ssh2;

let device: CallHomeDevice;
let direct: DirectDaemon;
const devices: CallHomeDevice[] = [];

async function newDevice(name: string): Promise<CallHomeDevice> {
  const d = await CallHomeDevice.create({ name });
  devices.push(d);
  return d;
}

test.before(async () => {
  device = await newDevice('direct');
  direct = await device.directDaemon();
});

test.after.always(async () => {
  await Promise.all(devices.map((d) => d.dispose()));
});

test('ensureNetconfd is idempotent under concurrent callers and loads the editable modules', async (t) => {
  const infos = await Promise.all([ensureNetconfd(), ensureNetconfd(), ensureNetconfd()]);
  for (const i of infos) t.is(i.socketPath, NCXSERVER_SOCK);
  t.true(infos.filter((i) => i.started).length <= 1);
  const pid = infos.find((i) => i.pid)?.pid;
  t.truthy(pid, 'netconfd pid known');
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  for (const m of NETCONFD_MODULES) t.true(cmdline.includes(`--module=${m}`));
});

test('ensureNetconfd from several processes at once starts exactly one netconfd', async (t) => {
  // A private state dir gives a private netconfd, so the shared one is not disturbed.
  const stateDir = makeTempDir('chgw-peer-race-');
  const env = { ...process.env, PEERS_STATE_DIR: stateDir };
  const harness = new URL('./peers/index.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(harness)}); console.log(JSON.stringify(await m.ensureNetconfd()));`;
  try {
    const results = await Promise.all([1, 2, 3, 4].map(() => run(process.execPath, ['--input-type=module', '-e', script], { env, timeoutMs: 40_000 })));
    const infos = results.map((r) => {
      t.is(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { started: boolean; pid: number; socketPath: string };
    });
    t.is(infos.filter((i) => i.started).length, 1, 'exactly one process started netconfd');
    t.is(new Set(infos.map((i) => i.pid)).size, 1, 'all see the same netconfd');
    t.is(infos[0]!.socketPath, `${stateDir}/ncxserver.sock`);
  } finally {
    const stop = `const m = await import(${JSON.stringify(harness)}); await m.stopNetconfd();`;
    await run(process.execPath, ['--input-type=module', '-e', stop], { env, timeoutMs: 20_000 });
  }
});

test('ensureNetconfd leaves a busy netconfd running: a full listen backlog is not a dead one', async (t) => {
  // netconfd listens with a backlog of one, so under load a probe's connect fails with EAGAIN.
  // Taking that for a dead netconfd restarted it under every other test's sessions. A stopped
  // (SIGSTOP) netconfd in a private state dir, its backlog filled, is that busy netconfd.
  const stateDir = makeTempDir('chgw-peer-busy-');
  const env = { ...process.env, PEERS_STATE_DIR: stateDir };
  const harness = new URL('./peers/index.js', import.meta.url).href;
  const ensure = async (): Promise<{ started: boolean; pid: number }> => {
    const script = `const m = await import(${JSON.stringify(harness)}); console.log(JSON.stringify(await m.ensureNetconfd()));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { env, timeoutMs: 40_000 });
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { started: boolean; pid: number };
  };
  const sockets: Socket[] = [];
  let pid: number | undefined;
  try {
    ({ pid } = await ensure());
    process.kill(pid, 'SIGSTOP');
    const socketPath = `${stateDir}/ncxserver.sock`;
    let refusedWith: string | undefined;
    while (!refusedWith && sockets.length < 50) {
      const s = netConnect(socketPath);
      sockets.push(s);
      refusedWith = await new Promise<string | undefined>((resolve) => {
        s.once('connect', () => resolve(undefined));
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    }
    t.is(refusedWith, 'EAGAIN', `the backlog filled after ${sockets.length} connections`);
    const again = await ensure();
    t.false(again.started, 'no new netconfd was started');
    t.is(again.pid, pid);
    t.true(pidAlive(pid), 'the busy netconfd was not stopped');
  } finally {
    for (const s of sockets) s.destroy();
    if (pid !== undefined && pidAlive(pid)) process.kill(pid, 'SIGCONT');
    const stop = `const m = await import(${JSON.stringify(harness)}); await m.stopNetconfd();`;
    await run(process.execPath, ['--input-type=module', '-e', stop], { env, timeoutMs: 20_000 });
  }
});

test('device files: fingerprint matches ssh-keygen, key line and fingerprint agree', (t) => {
  t.regex(device.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.is(fingerprintOfPublicKeyLine(device.hostPublicKeyLine), device.hostKeyFingerprint);
  t.regex(device.hostPublicKeyLine, /^ssh-ed25519 AAAA/);
  t.true(readFileSync(device.privateKeyFile, 'utf8').includes('OPENSSH PRIVATE KEY'));
  const cfg = readFileSync(device.sshdConfigFile, 'utf8');
  t.true(cfg.includes('Subsystem netconf ') && cfg.includes('netconf-subsystem-830.sh'));
});

test('ncclient on the direct path: get-config, lock, edit-config candidate, commit, verify, unlock, close-session', async (t) => {
  const name = uniqueIfName('direct');
  const since = netconfdLogOffset();
  const r = await runNcclient({
    host: direct.host,
    port: direct.port,
    username: device.username,
    keyFile: device.privateKeyFile,
    steps: [
      { op: 'get-config', source: 'running' },
      ...lockedEditSteps(interfaceConfig(name, 'harness self-test')), // lock, edit-config, commit, unlock
      { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
      ...lockedEditSteps(interfaceDeleteConfig(name)),
      { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
      { op: 'close-session' },
    ],
  });
  t.log(describeNcResult(r), `connect ${r.connectMs} ms`, r.steps.map((s) => `${s.op} ${s.ms}ms`).join(', '));
  assertNcOk(r);
  t.is(r.base, '1.1');
  t.true(r.serverCapabilities.includes(CAP_CANDIDATE));
  t.true(r.serverCapabilities.some((c) => c.includes('ietf-interfaces')));
  t.deepEqual(
    r.steps.map((s) => s.op),
    ['get-config', 'lock', 'edit-config', 'commit', 'unlock', 'get-config', 'lock', 'edit-config', 'commit', 'unlock', 'get-config', 'close-session'],
  );
  t.regex(r.steps[5]!.reply!, new RegExp(`<name>${name}</name>[\\s\\S]*<description>harness self-test</description>`));
  t.false(r.steps[10]!.reply!.includes(name), 'deleted again');
  const closes = await waitForNetconfdLog(NETCONFD_LOG_PATTERNS.closeSession, { since });
  t.true(
    closes.some((m) => m[1] === r.sessionId),
    `close-session logged for session ${r.sessionId}`,
  );
});

test('ncclient: a second session is refused the lock the first one holds (locks are real)', async (t) => {
  // Only <candidate> is locked by tests (lockedEditSteps); a lock on <running> would make
  // every other test's <commit> fail with "config locked". Others wait for this lock.
  let locked!: () => void;
  const holderLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = runNcclient({
    host: direct.host,
    port: direct.port,
    username: device.username,
    keyFile: device.privateKeyFile,
    steps: [
      { op: 'lock', target: 'candidate', retry_seconds: 15 },
      { op: 'sleep', seconds: 4 },
      { op: 'unlock', target: 'candidate' },
    ],
    onEvent: (e) => e.type === 'step' && e.op === 'lock' && e.ok && locked(),
  });
  await withTimeout(holderLocked, 25_000, 'the first session to get the lock');
  const other = await runNcclient({
    host: direct.host,
    port: direct.port,
    username: device.username,
    keyFile: device.privateKeyFile,
    steps: [{ op: 'lock', target: 'candidate' }],
  });
  assertNcOk(await holder);
  t.false(other.steps[0]!.ok, describeNcResult(other));
  t.is(other.steps[0]!.error?.kind, 'rpc-error');
  t.is(other.steps[0]!.error?.tag, 'lock-denied');
  t.regex(other.steps[0]!.error?.xml ?? '', /<session-id>\d+<\/session-id>/, 'error-info names the holder');
});

test('ncclient failures are classified: auth vs tcp', async (t) => {
  const other = await generateKeyPair(`${makeTempDir('chgw-peer-key-')}/stranger`);
  const auth = await runNcclient({
    host: direct.host,
    port: direct.port,
    username: device.username,
    keyFile: other.privateKeyFile,
    steps: [],
  });
  t.false(auth.connected);
  t.is(auth.error?.kind, 'auth', describeNcResult(auth));
  t.is(auth.exitCode, 2);
  t.regex(auth.stderr, /^NC_AUTH_FAILED: /m);

  const listener = await listenTcp();
  const port = listener.port;
  await listener.close();
  const tcp = await runNcclient({ host: '127.0.0.1', port, username: 'x', password: 'y', steps: [] });
  t.is(tcp.error?.kind, 'tcp', describeNcResult(tcp));
  t.is(tcp.exitCode, 3);
  t.regex(tcp.stderr, /^NC_CONNECT_FAILED: tcp: /m);
});

test('OpenSSH ssh -s netconf with a base:1.0 hello on the direct path', async (t) => {
  const since = netconfdLogOffset();
  const r = await runOpenSshNetconf({
    host: direct.host,
    port: direct.port,
    username: device.username,
    identityFile: device.privateKeyFile,
  });
  t.log(`ssh exit ${r.code} in ${r.ms} ms; stderr: ${r.stderr.trim()}`);
  t.false(r.timedOut);
  t.is(r.code, 0, r.stderr);
  t.true(r.serverHello?.includes(CAP_BASE_10));
  t.regex(r.replies[0] ?? '', /<rpc-reply[^>]*message-id="101"[\s\S]*<data>/);
  t.regex(r.closeReply ?? '', /message-id="999"[\s\S]*<ok\/>/);
  await waitForNetconfdLog(/Session \d+ for \S+ now active \(base:1\.0\)/, { since });
  await waitForNetconfdLog(NETCONFD_LOG_PATTERNS.closeSession, { since });
});

test('password login to the device (test user from install.sh): ncclient and OpenSSH via sshpass', async (t) => {
  if (!requireDevicePassword(t)) return;
  const pw = device.password!;
  const name = uniqueIfName('pw');
  const r = await runNcclient({
    host: direct.host,
    port: direct.port,
    username: pw.username,
    password: pw.password,
    steps: [
      ...lockedEditSteps(interfaceConfig(name, 'by password user')),
      { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
      ...lockedEditSteps(interfaceDeleteConfig(name)),
    ],
    end: 'close-session',
  });
  assertNcOk(r);
  t.true(r.steps[4]!.reply!.includes('by password user'));

  const bad = await runNcclient({ host: direct.host, port: direct.port, username: pw.username, password: 'wrong', steps: [] });
  t.is(bad.error?.kind, 'auth');

  const o = await runOpenSshNetconf({ host: direct.host, port: direct.port, username: pw.username, password: pw.password });
  t.is(o.code, 0, o.stderr);
  t.regex(o.replies[0] ?? '', /<data>/);
});

// --- the call-home side, at the TCP level: what the gateway will do ----------------------

interface Ssh2Session {
  client: InstanceType<typeof Client>;
  offeredFingerprint: string;
  stream: ssh2.ClientChannel;
  hello: string;
  /** reads the next ]]>]]>-framed message */
  next(timeoutMs?: number): Promise<string>;
  closed: Promise<void>;
}

/** ssh2 Client over an accepted call-home socket: verify host key, log in, open netconf. */
async function sshOverCallHome(sock: Socket, d: CallHomeDevice): Promise<Ssh2Session> {
  const client = new Client();
  let offeredFingerprint = '';
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({
        sock,
        username: d.username,
        privateKey: readFileSync(d.privateKeyFile),
        hostVerifier: (key: Buffer) => {
          offeredFingerprint = fingerprintOfKeyBlob(key);
          return offeredFingerprint === d.hostKeyFingerprint; // RFC 8071 §4.1 C5: identity = host key
        },
        readyTimeout: 10_000,
      });
    }),
    15_000,
    'ssh2 handshake over the call-home socket',
  );
  const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.subsys('netconf', (err, s) => (err ? reject(err) : resolve(s))));
  let buf = '';
  const waiting: (() => void)[] = [];
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    waiting.splice(0).forEach((w) => w());
  });
  const next = async (timeoutMs = 10_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = buf.indexOf(EOM);
      if (i >= 0) {
        const m = buf.slice(0, i);
        buf = buf.slice(i + EOM.length);
        return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no NETCONF message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const hello = await next();
  return { client, offeredFingerprint, stream, hello, next, closed };
}

function sessionIdOf(hello: string): string {
  const m = /<session-id>(\d+)<\/session-id>/.exec(hello);
  if (!m) throw new Error('no session-id in hello');
  return m[1]!;
}

test('call home: socat+sshd -i reaches a TCP listener; ssh2 over the accepted socket logs in and gets netconfd hello', async (t) => {
  const d = await newDevice('ch-basic');
  const listener = await listenTcp();
  t.teardown(() => listener.close());
  const since = netconfdLogOffset();
  const conn = d.callHome('127.0.0.1', listener.port);
  const sock = await listener.accept();
  const s = await sshOverCallHome(sock, d);
  t.is(s.offeredFingerprint, d.hostKeyFingerprint);
  t.true(s.hello.includes(CAP_BASE_11) && s.hello.includes(CAP_CANDIDATE));
  const sid = sessionIdOf(s.hello);

  // Our hello is base:1.0 only, so the session stays in end-of-message framing.
  s.stream.write(HELLO_BASE10 + EOM);
  // netconfd quirk: a <hello> and an <rpc> that arrive in one read leave the rpc unprocessed
  // (ssh2 sends the packets of one tick in one writev): let the hello land first.
  await waitForNetconfdLog(new RegExp(`Session ${sid} for \\S+ now active`), { since });
  s.stream.write(rpc(7, getConfigBody('running')) + EOM);
  t.regex(await s.next(), /message-id="7"[\s\S]*<data>/);
  s.stream.write(rpc(8, '<close-session/>') + EOM);
  t.regex(await s.next(), /message-id="8"[\s\S]*<ok\/>/);
  t.true((await waitForNetconfdSessionEnd(sid, { since })).closeSession);

  s.client.end();
  // sshd -i exits (255, "Connection closed") once the gateway side ends the connection.
  const exit = await withTimeout(conn.exited, 10_000, 'sshd -i to exit after the client ended');
  t.log('sshd -i exit', exit);
  await waitFor('device processes gone', () => d.liveConnections === 0, { timeoutMs: 5000 });
  await d.waitForSshdLog(/Accepted publickey for \S+ from 127\.0\.0\.1/);
  await d.waitForSshdLog(/Starting session: subsystem 'netconf'/);
});

test('call home: kill() hangs up mid-session (client sees close, netconfd sees the peer go)', async (t) => {
  const d = await newDevice('ch-kill');
  const listener = await listenTcp();
  t.teardown(() => listener.close());
  const since = netconfdLogOffset();
  const conn = d.callHome('127.0.0.1', listener.port);
  const s = await sshOverCallHome(await listener.accept(), d);
  const sid = sessionIdOf(s.hello);
  d.kill();
  await withTimeout(s.closed, 5000, 'ssh2 client to see the connection close');
  t.is((await conn.exited).signal, 'SIGKILL');
  const end = await waitForNetconfdSessionEnd(sid, { since });
  t.false(end.closeSession, 'no <close-session> from a device that was killed');
  t.true(
    [...end.log.matchAll(new RegExp(NETCONFD_LOG_PATTERNS.droppedByPeer, 'g'))].some((m) => (m[1] ?? m[2]) === sid),
    'netconfd saw the peer go',
  );
  await waitFor('device processes gone', () => d.liveConnections === 0, { timeoutMs: 5000 });
});

test('call home: freeze() stalls the device, thaw() resumes it', async (t) => {
  const d = await newDevice('ch-freeze');
  const listener = await listenTcp();
  t.teardown(() => listener.close());
  d.callHome('127.0.0.1', listener.port);
  const since = netconfdLogOffset();
  const s = await sshOverCallHome(await listener.accept(), d);
  s.stream.write(HELLO_BASE10 + EOM);
  // netconfd quirk: a <hello> and an <rpc> that arrive in one read leave the rpc unprocessed
  // until more bytes come. Frozen, sshd would pass both at once on thaw: let the hello land first.
  await waitForNetconfdLog(new RegExp(`Session ${sessionIdOf(s.hello)} for \\S+ now active`), { since });
  d.freeze();
  s.stream.write(rpc(1, getConfigBody('running')) + EOM);
  await t.throwsAsync(s.next(800), { message: /no NETCONF message/ });
  d.thaw();
  t.regex(await s.next(5000), /message-id="1"[\s\S]*<data>/);
  s.client.end();
  await d.stop();
  t.is(d.liveConnections, 0);
});

test('call home: persistent() calls again after the connection is dropped; stop() ends it', async (t) => {
  const d = await newDevice('ch-persist');
  const listener = await listenTcp();
  t.teardown(() => listener.close());
  d.persistent('127.0.0.1', listener.port, { pauseMs: 200 });
  const first = await listener.accept();
  first.destroy(); // the "gateway" hangs up
  const second = await listener.accept(5000);
  t.true(d.attempts >= 2);
  const s = await sshOverCallHome(second, d);
  t.is(s.offeredFingerprint, d.hostKeyFingerprint, 'same identity on every call');
  s.client.end();
  await d.stop();
  t.is(d.liveConnections, 0);
  const attempts = d.attempts;
  await new Promise((r) => setTimeout(r, 500));
  t.is(d.attempts, attempts, 'no more calls after stop()');
});

test('dispose() leaves no sshd or socat behind, even with sessions open', async (t) => {
  const d = await newDevice('ch-dispose');
  const listener = await listenTcp();
  t.teardown(() => listener.close());
  const conn = d.callHome('127.0.0.1', listener.port);
  await sshOverCallHome(await listener.accept(), d);
  const daemon = await d.directDaemon();
  // A session on the direct daemon: sshd gives it its own session (setsid), outside the
  // listener's process group.
  let connected!: () => void;
  const isConnected = new Promise<void>((resolve) => (connected = resolve));
  const held = runNcclient({
    host: daemon.host,
    port: daemon.port,
    username: d.username,
    keyFile: d.privateKeyFile,
    steps: [
      { op: 'sleep', seconds: 3 },
      { op: 'get-config', source: 'running' },
    ],
    onEvent: (e) => e.type === 'connected' && connected(),
  });
  await withTimeout(isConnected, 15_000, 'ncclient to connect to the direct daemon');
  const groups = [conn.pid, daemon.pid, ...descendantGroups(daemon.pid), ...descendantGroups(conn.pid)];
  t.true(groups.length >= 3, `session processes found: ${groups.join(',')}`);
  await d.dispose();
  for (const pg of groups) t.false(groupAlive(pg), `process group ${pg} gone`);
  t.deepEqual(findProcessesMentioning(d.dir), []);
  const r = await held;
  t.false(r.ok, 'the held session was cut');
  t.is(r.steps[1]?.error?.kind, 'transport', describeNcResult(r));
});

function findProcessesMentioning(s: string): string[] {
  const found: string[] = [];
  for (const pid of readdirNumeric('/proc')) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(s)) found.push(`${pid}: ${cmd}`);
    } catch {
      /* exited */
    }
  }
  return found;
}

function readdirNumeric(dir: string): string[] {
  return readdirSync(dir).filter((e) => /^\d+$/.test(e));
}
