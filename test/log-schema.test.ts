// Logs a pipeline can use (docs/LOGS.md): a gateway taken through representative events —
// a device accepted, an unknown device, a device login that fails, a manager session with
// an RPC, a manager with a wrong password, shutdown — writes only lines of the schema, with
// one spelling per field on both sides and `reason` in the metrics' vocabulary. The real CLI
// writes a JSON line for a fatal start-up error and a last "stopped" line.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerChannel } from 'ssh2';
import { reasonLabel, type ErrorCode } from '../src/errors.js';
import { CONNECTION_RESULTS, CLIENT_SESSION_RESULTS, DISCONNECT_CODES, disconnectReason } from '../src/metrics.js';
import { startGateway } from './helpers/gateway.js';
import { callHomeConnected, managerSession } from './helpers/fixture.js';
import { waitFor } from './helpers/wait.js';
import { logLineProblems, logProblems } from './helpers/log-schema.js';
import { NETCONF_HELLO, ScriptedDevice, inventoryFor } from './helpers/ssh-device.js';
import { CLIENT_HELLO_11, chunked, connectManager } from './helpers/ssh-manager.js';

type Line = Record<string, unknown>;
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

/** A device that answers every <rpc> with <ok/> (chunked framing: both sides offer base:1.1). */
function answering(channel: ServerChannel): void {
  channel.write(NETCONF_HELLO);
  let seen = '';
  channel.on('data', (d: Buffer) => {
    seen += d.toString();
    for (const m of seen.matchAll(/<rpc [^>]*message-id="(\d+)"/g)) {
      channel.write(chunked(`<rpc-reply message-id="${m[1]}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>`));
    }
    seen = seen.slice(seen.lastIndexOf('</rpc>') + 1);
  });
}

/** The `reason` vocabulary: every code's label (what the metrics use) and the splice's own ends. */
const REASONS = new Set<string>([
  ...CONNECTION_RESULTS,
  ...CLIENT_SESSION_RESULTS,
  ...DISCONNECT_CODES.map(disconnectReason),
  ...(
    [
      'GW_ERR_CHANNEL_REFUSED',
      'GW_ERR_DEVICE_UNAVAILABLE',
      'GW_ERR_CERT_IDENTITY',
      'GW_ERR_CERT_EXPIRED',
      'GW_ERR_CERT_REVOKED',
      'GW_ERR_CONFIG',
      'GW_ERR_LISTEN',
      'GW_ERR_INVENTORY',
      'GW_ERR_USERS',
      'GW_ERR_UNAUTHORIZED',
      'GW_ERR_NOT_FOUND',
    ] satisfies ErrorCode[]
  ).map(reasonLabel),
  'client_closed',
  'device_closed',
]);

test('the schema check finds what it must', (t) => {
  t.deepEqual(logLineProblems('{"level":"info","time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway","msg":"ok"}'), []);
  t.regex(logLineProblems('{"level":30,"time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway","msg":"x"}').join(), /level 30/);
  t.regex(logLineProblems('{"level":"info","time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway"}').join(), /no msg/);
  t.regex(logLineProblems('{"level":"warn","time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway","msg":"x","reason":"GW_ERR_TIMEOUT"}').join(), /lower-case/);
  t.regex(logLineProblems('{"level":"info","time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway","msg":"x","client":"10.0.0.1:2222"}').join(), /remoteAddress/);
  t.regex(
    logLineProblems('{"level":"info","time":"2026-01-01T00:00:00.000Z","name":"callhome-gateway","msg":"x","reason":"timeout","code":"GW_ERR_AUTH_FAILED"}').join(),
    /does not match/,
  );
  t.regex(logLineProblems('not json').join(), /not JSON/);
});

test('a gateway through accept, unknown device, failed login, a manager session with an RPC, a wrong password and shutdown', async (t) => {
  const edge = new ScriptedDevice({ onNetconf: answering });
  const locked = new ScriptedDevice();
  const stranger = new ScriptedDevice();
  const gw = await startGateway({
    inventory: inventoryFor([
      { id: 'edge-1', device: edge },
      { id: 'edge-locked', device: locked, password: 'not-the-device-password' },
    ]),
    users: 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["edge-*"]\n',
  });
  t.teardown(() => (edge.close(), locked.close(), stranger.close()));

  await callHomeConnected(gw, edge, 'edge-1');
  await stranger.callHome(gw.callhomePort);
  await locked.callHome(gw.callhomePort);
  await waitFor('auth_failed', async () => (await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}')) === 1, { timeoutMs: 10_000 });
  await waitFor('unknown_device', async () => (await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) === 1, { timeoutMs: 10_000 });

  const session = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = session;
  await session.waitFor(']]>]]>');
  session.channel.write(
    CLIENT_HELLO_11 + chunked('<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-config><source><running/></source></get-config></rpc>'),
  );
  await session.waitFor('message-id="1"');
  client.end();
  await session.closed;
  await t.throwsAsync(connectManager(gw.northboundPort, 'alice@edge-1', { password: 'wrong' }));
  await waitFor('client auth_failed', async () => (await gw.metric('callhome_client_sessions_total{result="auth_failed"}')) === 1, { timeoutMs: 10_000 });
  await waitFor('the session-end audit record', () => readFileSync(gw.config.audit.file, 'utf8').includes('session-end'), { timeoutMs: 10_000 });
  await gw.close(); // also runs the schema check on every line (test/helpers/gateway.ts)

  const audit = readFileSync(gw.config.audit.file, 'utf8').trim().split('\n');
  t.deepEqual(logProblems([...gw.logs, ...audit]), []);
  const lines = gw.logs.map((l) => JSON.parse(l) as Line);
  const find = (what: string, pred: (l: Line) => boolean) => {
    const hit = lines.find(pred);
    if (!hit) t.fail(`no ${what} line in:\n${gw.logs.join('\n')}`);
    return hit ?? {};
  };

  const accepted = find('device connected', (l) => l.msg === 'device connected');
  t.like(accepted, { level: 'info', device: 'edge-1', transport: 'ssh', remoteAddress: '127.0.0.1' });
  t.true(Number.isInteger(accepted.remotePort));

  const unknown = find('unknown device', (l) => l.reason === 'unknown_device');
  t.like(unknown, {
    level: 'warn',
    code: 'GW_ERR_UNKNOWN_DEVICE',
    result: 'unknown_device',
    fingerprint: stranger.fingerprint,
    keyType: 'ssh-ed25519',
    remoteAddress: '127.0.0.1',
  });

  const failed = find('device auth failure', (l) => l.reason === 'auth_failed' && l.side === 'callhome');
  t.like(failed, { level: 'warn', code: 'GW_ERR_AUTH_FAILED', result: 'auth_failed', device: 'edge-locked', remoteAddress: '127.0.0.1' });
  t.false(
    gw.logs.some((l) => l.includes('not-the-device-password') || l.includes('alice-pw')),
    'no password in the logs',
  );

  const authenticated = find('client authenticated', (l) => l.msg === 'client authenticated');
  t.like(authenticated, { side: 'northbound', user: 'alice', device: 'edge-1', remoteAddress: '127.0.0.1' });
  t.true(Number.isInteger(authenticated.remotePort));
  t.false(
    lines.some((l) => 'client' in l && typeof l.client === 'string'),
    'the manager address is remoteAddress/remotePort, as on the device side',
  );

  const shutdown = find('shutdown disconnect', (l) => l.msg !== undefined && l.reason === 'shutdown' && l.device === 'edge-1');
  t.like(shutdown, { code: 'GW_ERR_SHUTDOWN' });

  const reasons = [...new Set(lines.map((l) => l.reason).filter((r) => r !== undefined))];
  t.deepEqual(
    reasons.filter((r) => !REASONS.has(r as string)),
    [],
    `reasons outside the vocabulary: ${reasons.join(', ')}`,
  );
  for (const l of lines) t.is(typeof l.level, 'string');

  const records = audit.map((l) => JSON.parse(l) as Line);
  t.deepEqual(
    records.map((r) => r.event),
    ['session-start', 'rpc', 'session-end'],
  );
  for (const r of records) t.like(r, { level: 'info', audit: true, user: 'alice', device: 'edge-1', remoteAddress: '127.0.0.1' });
  t.like(records[1], { operation: 'get-config', messageId: '1', result: 'ok', msg: 'audit rpc' });
});

/** Runs the CLI to its end; stdout lines, stderr and exit code. */
function runCli(args: string[], env: Record<string, string>, onReady?: (stop: () => void) => void) {
  return new Promise<{ stdout: string[]; stderr: string; code: number | null }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (onReady && out.includes('"gateway ready"')) {
        const stop = onReady;
        onReady = undefined;
        // The signal handlers are installed right after the ready line.
        stop(() => setTimeout(() => child.kill('SIGTERM'), 300));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code) => resolve({ stdout: out.split('\n').filter(Boolean), stderr: err, code }));
  });
}

test('the CLI: a fatal start-up error is a JSON line and one line on stderr; a run ends with a "stopped" line', async (t) => {
  const bad = await runCli(['run'], { CHGW_NO_SUCH_KEY: '1' });
  t.is(bad.code, 2);
  t.is(bad.stderr, 'callhome-gateway: CHGW_NO_SUCH_KEY: no such configuration key\n');
  t.deepEqual(logProblems(bad.stdout), []);
  t.is(bad.stdout.length, 1);
  t.like(JSON.parse(bad.stdout[0]!), { level: 'fatal', reason: 'config', code: 'GW_ERR_CONFIG', exitCode: 2, msg: 'not started: CHGW_NO_SUCH_KEY: no such configuration key' });

  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-logs-'));
  writeFileSync(path.join(dir, 'devices.yaml'), 'devices: []\n');
  writeFileSync(path.join(dir, 'users.yaml'), 'users: []\n');
  const env = {
    CHGW_STATEDIR: path.join(dir, 'state'),
    CHGW_INVENTORY_FILE: path.join(dir, 'devices.yaml'),
    CHGW_USERS_FILE: path.join(dir, 'users.yaml'),
    CHGW_AUDIT_FILE: path.join(dir, 'audit.jsonl'),
  };
  for (const k of ['CALLHOME_SSH', 'CALLHOME_TLS', 'NORTHBOUND', 'HTTP']) Object.assign(env, { [`CHGW_${k}_HOST`]: '127.0.0.1', [`CHGW_${k}_PORT`]: '0' });
  const run = await runCli(['run'], env, (stop) => stop());
  t.is(run.code, 0, run.stderr);
  t.deepEqual(logProblems(run.stdout), []);
  t.like(JSON.parse(run.stdout.at(-1)!), { level: 'info', msg: 'stopped: drained', exitCode: 0, signal: 'SIGTERM', exitReason: 'drained' });
});
