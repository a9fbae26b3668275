// Onboarding an unknown real device with the CLI alone: refused -> pending -> approved by
// `callhome-gateway devices approve` -> its next call home is accepted -> a real manager
// (ncclient) reaches it -> the approval survives a gateway restart. Then: reject for good,
// the token check, and a grep of every log line, API answer, CLI output and audit record
// for the secrets in play.
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { CallHomeDevice, assertNcOk, ensureNetconfd, freePort, makeTempDir, requirePeers, runNcclient } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const devices: CallHomeDevice[] = [];
const gateways: TestGateway[] = [];
test.after.always(async () => {
  for (const g of gateways) await g.close().catch(() => {});
  await Promise.all(devices.map((d) => d.dispose()));
});

test.serial('approve an unknown real device with the CLI; a manager reaches it; the approval survives a restart; reject is for good; no secret leaks', async (t) => {
  await ensureNetconfd();
  const dir = makeTempDir('chgw-onboard');
  const token = 'tok-' + randomBytes(16).toString('hex');
  const userPassword = 'pw-' + randomBytes(12).toString('hex');
  const tokenFile = path.join(dir, 'admin-token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const callhomePort = await freePort();
  const env = {
    CHGW_STATEDIR: path.join(dir, 'state'),
    CHGW_CALLHOME_SSH_PORT: String(callhomePort),
    CHGW_HTTP_ADMINTOKENFILE: tokenFile,
    CHGW_ONBOARDING_SECRETSDIR: dir,
    CHGW_AUDIT_FILE: path.join(dir, 'audit.jsonl'),
  };
  const users = `users:\n  - name: alice\n    password: ${userPassword}\n    devices: ["*"]\n`;
  let gw = await startGateway({ users, env });
  gateways.push(gw);
  const api = () => `http://127.0.0.1:${gw.httpPort}`;
  const outputs: string[] = [];
  const run = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const r = await cli([...args, '--api', api()], extraEnv);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  const device = await CallHomeDevice.create({ name: 'onboard' });
  const stranger = await CallHomeDevice.create({ name: 'onboard-stranger' });
  devices.push(device, stranger);
  const devicePassword = device.password;
  device.persistent('127.0.0.1', callhomePort, { pauseMs: 300 });

  // 1. refused and pending
  await waitFor('the device in `devices pending`', async () => (await run(['devices', 'pending'])).stdout.includes(device.hostKeyFingerprint), { timeoutMs: 20_000 });
  const pendingTable = (await run(['devices', 'pending'])).stdout;
  t.regex(pendingTable, /^FINGERPRINT\s+KEY TYPE\s+REMOTE/m);
  t.regex(pendingTable, /ssh-ed25519\s+127\.0\.0\.1/);
  t.true((await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) >= 1);

  // 2. writes need the token
  const approveArgs = ['devices', 'approve', device.hostKeyFingerprint, '--id', 'onboarded-1'];
  const creds = devicePassword
    ? ['--username', devicePassword.username, '--password-file', writeSecret(dir, 'device-pw', devicePassword.password)]
    : ['--username', device.username, '--key-file', writeSecret(dir, 'device-key', readFileSync(device.privateKeyFile, 'utf8'))];
  const noToken = await run([...approveArgs, ...creds]);
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /401 a valid bearer token is required/);
  const wrongToken = await run([...approveArgs, ...creds], { CALLHOME_GATEWAY_TOKEN: 'wrong' });
  t.is(wrongToken.code, 1);
  const rawPost = await fetch(`${api()}/api/pending/${encodeURIComponent(device.hostKeyFingerprint)}/approve`, { method: 'POST', body: '{}' });
  t.is(rawPost.status, 401);
  t.is((await fetch(`${api()}/metrics`)).status, 200, '/metrics stays open');

  // 3. approve with the CLI
  const approved = await run([...approveArgs, ...creds, '--token-file', tokenFile]);
  t.is(approved.code, 0, approved.stderr);
  t.regex(approved.stdout, /approved SHA256:\S+ as onboarded-1/);
  await deviceConnected(gw, 'onboarded-1', 20_000);
  const list = (await run(['devices', 'list'])).stdout;
  t.regex(list, /onboarded-1\s+connected\s+ssh\s+127\.0\.0\.1\s+-\s+0\s+approval/);
  t.false((await run(['devices', 'pending'])).stdout.includes(device.hostKeyFingerprint), 'no longer pending');
  const show = (await run(['devices', 'show', 'onboarded-1'])).stdout;
  t.regex(show, /capabilities\s+urn:ietf:params:netconf/);
  t.true(existsSync(path.join(dir, 'state', 'approvals.json')));

  // 4. a real manager reaches it
  const nc = () =>
    runNcclient({
      host: '127.0.0.1',
      port: gw.northboundPort,
      username: 'alice@onboarded-1',
      password: userPassword,
      steps: [{ op: 'get-config', source: 'running' }, { op: 'close-session' }],
    });
  assertNcOk(await nc());

  // 5. restart: the approval is kept
  const logsBefore = [...gw.logs];
  await gw.close();
  gw = await startGateway({ users, env });
  gateways.push(gw);
  await deviceConnected(gw, 'onboarded-1', 30_000);
  assertNcOk(await nc());
  t.pass('the device was accepted after the restart without a new approval');

  // 6. reject for good
  stranger.persistent('127.0.0.1', callhomePort, { pauseMs: 300 });
  await waitFor(
    'the stranger pending',
    async () => (await gw.get<Array<{ fingerprint: string }>>('/api/pending')).body.some((p) => p.fingerprint === stranger.hostKeyFingerprint),
    { timeoutMs: 20_000 },
  );
  const rejected = await run(['devices', 'reject', stranger.hostKeyFingerprint], { CALLHOME_GATEWAY_TOKEN: token });
  t.is(rejected.code, 0, rejected.stderr);
  const before = await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}');
  await waitFor('the stranger to call again', async () => (await gw.metric('callhome_connections_total{transport="ssh",result="unknown_device"}')) >= before + 2, {
    timeoutMs: 20_000,
  });
  t.false(
    (await gw.get<Array<{ fingerprint: string }>>('/api/pending')).body.some((p) => p.fingerprint === stranger.hostKeyFingerprint),
    'a rejected device stays out of pending',
  );
  await stranger.stop();

  // 7. no secret anywhere
  const apiAnswers = await Promise.all(['/api/devices', '/api/pending', '/api/devices/onboarded-1', '/metrics'].map(async (p) => (await fetch(api() + p)).text()));
  const everything = [...logsBefore, ...gw.logs, ...outputs, ...apiAnswers, readFileSync(env.CHGW_AUDIT_FILE, 'utf8')].join('\n');
  const secrets: Array<[string, string]> = [
    ['admin token', token],
    ['user password', userPassword],
    ...(devicePassword ? ([['device password', devicePassword.password]] as Array<[string, string]>) : []),
    ['device private key', readFileSync(device.privateKeyFile, 'utf8').split('\n')[1]!.slice(0, 40)],
  ];
  for (const [what, secret] of secrets) t.false(everything.includes(secret), `${what} appears in a log line, API answer or CLI output`);
  t.true(everything.length > 10_000, 'there was plenty to grep');
  const audit = readFileSync(env.CHGW_AUDIT_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(audit.some((r) => r.event === 'rpc' && r.operation === 'get-config' && r.result === 'ok' && r.user === 'alice' && r.device === 'onboarded-1'));
  t.true(audit.some((r) => r.event === 'session-end' && typeof r.durationMs === 'number'));
});

function writeSecret(dir: string, name: string, value: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return file;
}
