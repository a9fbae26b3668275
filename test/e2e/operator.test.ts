// The operator API with real peers (sshd -i + netconfd devices, ncclient and OpenSSH
// managers): the live session list, ending a session, dropping a device, why a device is
// not connected (lastError), and read-only users on spliced and held device sessions.
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { runSessions } from '../../src/cli/sessions.js';
import { runDevices } from '../../src/cli/devices.js';
import type { ClientSessionView } from '../../src/northbound/sessions.js';
import {
  BIN,
  CallHomeDevice,
  EOM,
  HELLO_BASE10,
  assertNcOk,
  editConfigBody,
  ensureNetconfd,
  generateKeyPair,
  getConfigBody,
  interfaceConfig,
  interfaceFilter,
  makeTempDir,
  requirePeers,
  runNcclient,
  runOpenSshNetconf,
  sshArgs,
  uniqueIfName,
  type NcJob,
  type NcResult,
} from './peers/index.js';

const test = requirePeers(anyTest);
const TOKEN = 'operator-test-token';

let gw: TestGateway;
let edge: CallHomeDevice;
let single: CallHomeDevice;
let bad: CallHomeDevice;
let bobKey: { privateKeyFile: string; publicKeyLine: string };
let api: string;

type SessionView = ClientSessionView;

test.before(async () => {
  await ensureNetconfd();
  [edge, single, bad] = await Promise.all([CallHomeDevice.create({ name: 'op-edge' }), CallHomeDevice.create({ name: 'op-single' }), CallHomeDevice.create({ name: 'op-bad' })]);
  const dir = makeTempDir('chgw-operator');
  bobKey = await generateKeyPair(path.join(dir, 'bob_ed25519'), 'bob@laptop');
  // A key the bad device does not accept: its attempts fail at login, after identification.
  const wrongKey = await generateKeyPair(path.join(dir, 'wrong_ed25519'), 'not-authorized');
  gw = await startGateway({
    inventory:
      `devices:\n` +
      `  - id: edge-1\n    ssh: { hostKeys: ["${edge.hostPublicKeyLine}"] }\n    credentials: { username: ${edge.username}, privateKeyFile: ${edge.privateKeyFile} }\n` +
      `  - id: single-1\n    ssh: { hostKeys: ["${single.hostPublicKeyLine}"] }\n    credentials: { username: ${single.username}, privateKeyFile: ${single.privateKeyFile} }\n    sessions: single\n` +
      `  - id: bad-1\n    ssh: { hostKeys: ["${bad.hostPublicKeyLine}"] }\n    credentials: { username: ${bad.username}, privateKeyFile: ${wrongKey.privateKeyFile} }\n`,
    users:
      `users:\n` +
      `  - name: alice\n    password: alice-pw\n    devices: ["*"]\n` +
      `  - name: bob\n    password: bob-pw\n    authorizedKeys: ["${bobKey.publicKeyLine}"]\n    devices: ["*"]\n    access: read-only\n`,
    env: { CHGW_HTTP_ADMINTOKEN: TOKEN },
  });
  api = `http://127.0.0.1:${gw.httpPort}`;
  edge.persistent('127.0.0.1', gw.callhomePort);
  single.persistent('127.0.0.1', gw.callhomePort);
  for (const id of ['edge-1', 'single-1']) {
    await deviceConnected(gw, id, 20_000);
  }
});

test.after.always(async () => {
  await gw?.close();
  await Promise.all([edge?.dispose(), single?.dispose(), bad?.dispose()]);
});

const job = (username: string, extra: Partial<NcJob>): NcJob => ({
  host: '127.0.0.1',
  port: gw.northboundPort,
  username,
  password: username.startsWith('bob') ? 'bob-pw' : 'alice-pw',
  steps: [],
  ...extra,
});

const sessions = async () => (await gw.get<SessionView[]>('/api/sessions')).body;
const audit = () =>
  readFileSync(gw.config.audit.file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function capture(): { out: (t: string) => void; env: NodeJS.ProcessEnv; text: () => string } {
  let text = '';
  return { out: (t) => (text += t), env: {}, text: () => text };
}

/** Runs an ncclient job and resolves, once it is connected, with its session as the API lists it. */
async function whileConnected(j: NcJob, user: string, device: string): Promise<{ result: Promise<NcResult>; session: SessionView }> {
  let connected!: () => void;
  const up = new Promise<void>((r) => (connected = r));
  const result = runNcclient({ ...j, onEvent: (e) => e.type === 'connected' && connected() });
  await up;
  const session = await waitFor(`${user}'s session in /api/sessions`, async () => (await sessions()).find((s) => s.user === user && s.device === device), { timeoutMs: 10_000 });
  return { result, session };
}

test.serial('ncclient sees its session in /api/sessions; an operator ends it (CLI, audited) and ncclient sees the session end', async (t) => {
  const { result, session } = await whileConnected(
    job('alice@edge-1', {
      steps: [
        { op: 'get-config', source: 'running' },
        { op: 'sleep', seconds: 6 },
        { op: 'get-config', source: 'running' },
      ],
      processTimeoutMs: 40_000,
    }),
    'alice',
    'edge-1',
  );
  await waitFor('the first RPC to be counted', async () => (await sessions()).find((s) => s.id === session.id && s.rpcs >= 1), { timeoutMs: 10_000 });
  const s = (await sessions()).find((x) => x.id === session.id)!;
  t.like(s, { user: 'alice', device: 'edge-1', access: 'read-write', kind: 'channel', denied: 0 });
  t.regex(s.remoteAddress, /^127\.0\.0\.1:\d+$/);
  t.true(s.replica.length > 0);
  t.false(Number.isNaN(Date.parse(s.startedAt)));
  t.true(s.bytesToDevice > 0 && s.bytesToClient > s.bytesToDevice, `${s.bytesToDevice} / ${s.bytesToClient}`);
  t.is(await gw.metric('callhome_device_client_sessions{device="edge-1"}'), 1);

  const cli = capture();
  t.is(await runSessions(['list', '--api', api], cli), 0);
  t.regex(cli.text(), new RegExp(`${session.id}\\s+alice\\s+edge-1\\s+read-write`));

  const refused = await fetch(`${api}/api/sessions/${session.id}`, { method: 'DELETE' });
  t.is(refused.status, 401, 'writes need the admin token');
  t.is(await runSessions(['kill', session.id, '--api', api, '--token', TOKEN], cli), 0);

  const r = await result;
  t.true(r.connected);
  t.true(r.steps[0]!.ok);
  t.false(r.ok, 'the session ended under ncclient');
  t.true(r.steps.length < 3 || !r.steps[2]!.ok);
  await waitFor('the session to leave the list', async () => !(await sessions()).some((x) => x.id === session.id), { timeoutMs: 5_000 });
  t.is(await gw.metric('callhome_device_client_sessions{device="edge-1"}'), 0);
  const records = audit().filter((a) => a.event === 'admin' && a.target === session.id);
  t.like(records[0], { action: 'session-kill', actor: 'none', result: 'unauthorized' });
  t.like(records[1], { action: 'session-kill', actor: 'admin-token', result: 'ok' });
  t.regex(String(records[1]!.userAgent), /^callhome-gateway-cli \(/);
  t.regex(String(records[1]!.remoteAddress), /^127\.0\.0\.1:\d+$/);
  t.like(
    audit().find((a) => a.event === 'session-end' && a.session === session.id),
    { reason: 'operator', code: 'GW_ERR_OPERATOR' },
  );
  t.is((await fetch(`${api}/api/sessions/${session.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } })).status, 404);
});

test.serial('OpenSSH: a session an operator ends gets the one-line reason on its stderr', async (t) => {
  const ssh = spawn(BIN.ssh, sshArgs({ host: '127.0.0.1', port: gw.northboundPort, username: 'bob@edge-1', identityFile: bobKey.privateKeyFile }), {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  ssh.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  ssh.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => ssh.once('exit', (code) => resolve(code)));
  ssh.stdin.write(HELLO_BASE10 + EOM); // stdin stays open: the session lasts until it is ended
  await waitFor('the device hello', () => stdout.includes(EOM), { timeoutMs: 10_000 });
  const session = await waitFor("bob's session", async () => (await sessions()).find((s) => s.user === 'bob' && s.device === 'edge-1'), { timeoutMs: 10_000 });
  t.is(session.access, 'read-only');
  const res = await fetch(`${api}/api/sessions/${session.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
  t.is(res.status, 200);
  const code = await exited;
  t.is(stderr.trim(), 'callhome-gateway: session ended by an operator');
  t.not(code, 0);
});

test.serial('a device whose login fails shows lastError auth_failed in the API and in `devices list`', async (t) => {
  t.is((await gw.get<{ lastError: unknown }>('/api/devices/bad-1')).body.lastError, null);
  const attempt = bad.callHome('127.0.0.1', gw.callhomePort);
  const d = await waitFor(
    'bad-1 to fail',
    async () => {
      const body = (await gw.get<{ lastError: { reason: string; at: string; message: string } | null; state: string }>('/api/devices/bad-1')).body;
      return body.lastError ? body : undefined;
    },
    { timeoutMs: 20_000 },
  );
  await attempt.exited;
  t.is(d.state, 'disconnected');
  t.is(d.lastError!.reason, 'auth_failed');
  t.regex(d.lastError!.message, /refused the gateway's credentials/);
  t.true(Date.now() - Date.parse(d.lastError!.at) < 60_000);
  t.is((await gw.get<{ lastError: unknown }>('/api/devices/edge-1')).body.lastError, null, 'a connected device has none');
  const cli = capture();
  t.is(await runDevices(['list', '--api', api], cli), 0);
  t.regex(cli.text(), /bad-1\s+disconnected\s+.*auth_failed at \d{4}-/);
});

/** Steps that must all be refused for a read-only user, then a read that must work. */
function readOnlySteps(name: string) {
  return [
    { op: 'get-config', source: 'running' },
    { op: 'lock', target: 'candidate' },
    { op: 'edit-config', target: 'candidate', config: interfaceConfig(name, 'must never be written') },
    { op: 'commit' },
    { op: 'get-config', source: 'candidate', filter: interfaceFilter(name) },
  ] as NcJob['steps'];
}

function checkReadOnly(t: import('ava').ExecutionContext, r: NcResult, name: string): void {
  t.true(r.connected, r.stderr);
  const [read, lock, edit, commit, readAfter] = r.steps;
  t.true(read!.ok, 'get-config works');
  for (const [step, op] of [
    [lock, 'lock'],
    [edit, 'edit-config'],
    [commit, 'commit'],
  ] as const) {
    t.false(step!.ok, `${op} is refused`);
    t.is(step!.error?.kind, 'rpc-error', `${op}: ${step!.error?.message}`);
    t.is(step!.error?.tag, 'access-denied', op);
  }
  t.true(readAfter!.ok, 'the session goes on after the refusals');
  t.false(readAfter!.reply!.includes(name));
}

/** The device's datastores, through a read-write user, do not hold `name`. */
async function assertUnchanged(t: import('ava').ExecutionContext, device: string, name: string): Promise<void> {
  const check = assertNcOk(
    await runNcclient(
      job(`alice@${device}`, {
        steps: [
          { op: 'get-config', source: 'running', filter: interfaceFilter(name) },
          { op: 'get-config', source: 'candidate', filter: interfaceFilter(name) },
        ],
        end: 'close-session',
      }),
    ),
  );
  for (const s of check.steps) t.false(s.reply!.includes(name), 'the device never saw the edit');
}

test.serial('read-only ncclient: lock, edit-config and commit get access-denied from the gateway, get-config works, the datastore is unchanged', async (t) => {
  const name = uniqueIfName('ro');
  const r = await runNcclient(job('bob@edge-1', { steps: readOnlySteps(name), end: 'close-session' }));
  checkReadOnly(t, r, name);
  await assertUnchanged(t, 'edge-1', name);
  const denied = audit()
    .filter((a) => a.event === 'rpc' && a.user === 'bob' && a.result === 'access-denied')
    .map((a) => a.operation);
  t.deepEqual(denied.slice(-3), ['lock', 'edit-config', 'commit'], 'refusals are audited');
});

test.serial('read-only OpenSSH at base:1.0 gets the refusal in end-of-message framing with its message-id', async (t) => {
  const name = uniqueIfName('ro-ssh');
  const r = await runOpenSshNetconf({
    host: '127.0.0.1',
    port: gw.northboundPort,
    username: 'bob@edge-1',
    identityFile: bobKey.privateKeyFile,
    rpcs: [getConfigBody('running'), editConfigBody('candidate', interfaceConfig(name)), getConfigBody('candidate', interfaceFilter(name))],
  });
  t.is(r.code, 0, `stderr: ${r.stderr} stdout: ${r.stdout.slice(-300)}`);
  t.is(r.stderr, '');
  t.regex(r.replies[0]!, /<rpc-reply[^>]*message-id="101"[\s\S]*<data/);
  t.regex(
    r.replies[1]!,
    /^<rpc-reply message-id="102" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><rpc-error><error-type>protocol<\/error-type><error-tag>access-denied<\/error-tag><error-severity>error<\/error-severity><error-message xml:lang="en">access denied: user bob is read-only and may not call edit-config<\/error-message><\/rpc-error><\/rpc-reply>$/,
  );
  t.true(r.stdout.includes(`</rpc-reply>${EOM}`));
  t.notRegex(r.stdout, /\n#\d+\n/, 'no chunked framing');
  t.regex(r.replies[2]!, /message-id="103"/);
  t.false(r.replies[2]!.includes(name));
  t.regex(r.closeReply ?? '', /<ok\/>/);
});

test.serial('read-only on a held device session (sessions: single): refused RPCs never reach the device, the session is listed as held', async (t) => {
  const name = uniqueIfName('ro-held');
  const { result, session } = await whileConnected(job('bob@single-1', { steps: [{ op: 'sleep', seconds: 1 }, ...readOnlySteps(name)], end: 'close-session' }), 'bob', 'single-1');
  t.like(session, { kind: 'held', access: 'read-only' });
  const r = await result;
  checkReadOnly(t, { ...r, steps: r.steps.slice(1) }, name);
  await assertUnchanged(t, 'single-1', name);
});

test.serial('POST /api/devices/{id}/disconnect drops the device (CLI); its clients get the reason; it calls home again', async (t) => {
  const before = (await gw.get<{ reconnects: number }>('/api/devices/edge-1')).body.reconnects;
  t.is((await fetch(`${api}/api/devices/edge-1/disconnect`, { method: 'POST' })).status, 401);
  const cli = capture();
  t.is(await runDevices(['disconnect', 'edge-1', '--api', api, '--token', TOKEN], cli), 0);
  t.regex(cli.text(), /disconnected edge-1/);
  const d = await waitFor(
    'edge-1 to call home again',
    async () => {
      const body = (await gw.get<{ state: string; reconnects: number; lastDisconnects: { reason: string }[] }>('/api/devices/edge-1')).body;
      return body.state === 'connected' && body.reconnects > before ? body : undefined;
    },
    { timeoutMs: 20_000 },
  );
  t.is(d.lastDisconnects[0]!.reason, 'GW_ERR_OPERATOR');
  t.like(
    audit()
      .filter((a) => a.event === 'admin' && a.action === 'device-disconnect')
      .pop(),
    { target: 'edge-1', actor: 'admin-token', result: 'ok' },
  );
  t.is((await fetch(`${api}/api/devices/nope/disconnect`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } })).status, 404);
});

test.serial('a lent held session can be ended too; the device keeps its one session and lends it again', async (t) => {
  const { result, session } = await whileConnected(
    job('alice@single-1', {
      steps: [
        { op: 'sleep', seconds: 4 },
        { op: 'get-config', source: 'running' },
      ],
      processTimeoutMs: 30_000,
    }),
    'alice',
    'single-1',
  );
  t.is(session.kind, 'held');
  t.is((await fetch(`${api}/api/sessions/${session.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
  const r = await result;
  t.false(r.ok);
  const again = assertNcOk(await runNcclient(job('alice@single-1', { steps: [{ op: 'get-config', source: 'running' }], end: 'close-session' })));
  t.is(again.sessionId, r.sessionId, 'the same NETCONF session on the device');
});

test.serial('a user made read-only by a users-file reload loses the sessions that allowed writes', async (t) => {
  const { result, session } = await whileConnected(
    job('alice@edge-1', {
      steps: [
        { op: 'sleep', seconds: 4 },
        { op: 'get-config', source: 'running' },
      ],
      processTimeoutMs: 30_000,
    }),
    'alice',
    'edge-1',
  );
  t.is(session.access, 'read-write');
  const original = readFileSync(gw.usersFile, 'utf8');
  try {
    writeFileSync(
      gw.usersFile,
      original.replace('  - name: alice\n    password: alice-pw\n    devices: ["*"]\n', '  - name: alice\n    password: alice-pw\n    devices: ["*"]\n    access: read-only\n'),
    );
    t.true(await gw.gateway.reloadUsers());
    t.false((await result).ok, 'the read-write session ended');
    await gw.waitForLog(/access of user alice to edge-1 made read-only by the users file/);
  } finally {
    writeFileSync(gw.usersFile, original);
    await gw.gateway.reloadUsers();
  }
});
