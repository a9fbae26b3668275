import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configEnvNames } from '../src/config/load.js';
import { verifyPasswordHash } from '../src/northbound/auth.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'chgw-cli-'));

function run(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input: options.input ?? '',
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...options.env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help and --version exit 0; every command has --help', (t) => {
  t.is(run(['--help']).code, 0);
  t.regex(run(['--help']).stdout, /fingerprint/);
  t.regex(run(['--version']).stdout, /^\d+\.\d+\.\d+/);
  for (const cmd of ['run', 'fingerprint', 'hash-password']) {
    const r = run([cmd, '--help']);
    t.is(r.code, 0, cmd);
    t.regex(r.stdout, new RegExp(`callhome-gateway ${cmd}`));
  }
});

test('run --help lists every configuration key with its environment variable; secrets show no default', (t) => {
  const help = run(['run', '--help']).stdout;
  for (const [key, env] of configEnvNames()) t.true(help.includes(`  ${key} (${env}, default `), key);
  t.regex(help, /http\.adminToken \(CHGW_HTTP_ADMINTOKEN, default \(secret\)\)/);
});

test('fingerprint prints what ssh-keygen -lf prints, from a file and from stdin', (t) => {
  const key = path.join(dir, 'host');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dev@site', '-f', key]);
  const expected = execFileSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' });
  const r = run(['fingerprint', `${key}.pub`]);
  t.is(r.code, 0);
  t.is(r.stdout, expected);
  const fromStdin = run(['fingerprint'], { input: execFileSync('cat', [`${key}.pub`], { encoding: 'utf8' }) });
  t.is(fromStdin.stdout, expected);
});

test('fingerprint of a missing or unreadable file: exit 2, one line', (t) => {
  for (const input of [[path.join(dir, 'nope.pub')], ['a', 'b']]) {
    const r = run(['fingerprint', ...input]);
    t.is(r.code, 2);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  const garbage = run(['fingerprint'], { input: 'not a key\n' });
  t.is(garbage.code, 2);
  t.regex(garbage.stderr, /^callhome-gateway: /);
});

test('hash-password reads stdin and prints a hash that verifies', async (t) => {
  const r = run(['hash-password'], { input: 'pa ss\n' });
  t.is(r.code, 0);
  const hash = r.stdout.trim();
  t.true(await verifyPasswordHash('pa ss', hash));
  t.false(await verifyPasswordHash('pa ss\n', hash));
  t.is(run(['hash-password'], { input: '' }).code, 2);
});

test('bad usage and bad configuration exit 2 with one line naming the problem', (t) => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['frobnicate'], {}, /unknown command "frobnicate"/],
    [['run', '--bogus'], {}, /bogus/],
    [['run'], { CHGW_NORTHBOUND_PORT: 'eighty' }, /CHGW_NORTHBOUND_PORT/],
    [['run', '--config', path.join(dir, 'missing.yaml')], {}, /missing\.yaml/],
  ];
  writeFileSync(path.join(dir, 'bad.yaml'), 'northbound:\n  prot: 1\n');
  cases.push([['run', '--config', path.join(dir, 'bad.yaml')], {}, /northbound\.prot/]);
  writeFileSync(path.join(dir, 'devices.yaml'), 'devices: [{ id: "bad id" }]\n');
  cases.push([
    ['run'],
    {
      CHGW_INVENTORY_FILE: path.join(dir, 'devices.yaml'),
      CHGW_STATEDIR: dir,
      CHGW_HTTP_PORT: '0',
      CHGW_NORTHBOUND_PORT: '0',
      CHGW_CALLHOME_SSH_PORT: '0',
      CHGW_CALLHOME_TLS_PORT: '0',
    },
    /inventory .*id must be/,
  ]);
  for (const [args, env, message] of cases) {
    const r = run(args, { env });
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('a port already in use is a runtime failure: exit 1, one line', async (t) => {
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  writeFileSync(path.join(dir, 'empty-users.yaml'), 'users: []\n');
  writeFileSync(path.join(dir, 'empty-devices.yaml'), 'devices: []\n');
  const r = run(['run'], {
    env: {
      CHGW_INVENTORY_FILE: path.join(dir, 'empty-devices.yaml'),
      CHGW_USERS_FILE: path.join(dir, 'empty-users.yaml'),
      CHGW_STATEDIR: dir,
      CHGW_HTTP_HOST: '127.0.0.1',
      CHGW_HTTP_PORT: String(port),
      CHGW_NORTHBOUND_PORT: '0',
      CHGW_CALLHOME_SSH_PORT: '0',
      CHGW_CALLHOME_TLS_PORT: '0',
      CHGW_LOG_LEVEL: 'silent',
    },
  });
  blocker.close();
  t.is(r.code, 1);
  t.regex(r.stderr, /EADDRINUSE/);
  t.is(r.stderr.trim().split('\n').length, 1);
});
