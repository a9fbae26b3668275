// `callhome-gateway certs` and `fingerprint` as an operator runs them: exit codes, one-line
// errors, and fingerprints identical to what OpenSSL prints.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CLI = path.resolve('dist/src/cli/main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'chgw-certs-cli-'));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CHGW_STATEDIR: path.join(dir, 'state') } });

test.serial('init keeps existing material; issue and fingerprint agree with openssl; bad usage exits 2 with one line', (t) => {
  const first = run('certs', 'init');
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /^created CA /);
  const again = run('certs', 'init');
  t.is(again.status, 0);
  t.regex(again.stdout, /^kept existing CA /);
  const issued = run('certs', 'issue', '--device', 'edge-7', '--field', 'san', '--out', path.join(dir, 'out'));
  t.is(issued.status, 0, issued.stderr);
  const cert = path.join(dir, 'out', 'edge-7.crt');
  const ours = run('fingerprint', cert).stdout.trim();
  const openssl = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim();
  t.is(ours.toLowerCase(), openssl.toLowerCase(), 'same line as openssl x509 -fingerprint -sha256');
  t.true(issued.stdout.includes(ours.replace(/^sha256 /i, 'sha256 ')), 'issue prints the pin');
  t.regex(execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'out', 'ca.crt'), cert], { encoding: 'utf8' }), /OK/);
  for (const args of [
    ['certs'],
    ['certs', 'issue'],
    ['certs', 'issue', '--device', 'bad id'],
    ['certs', 'issue', '--device', 'x', '--field', 'email'],
    ['certs', 'crl', '--revoke', 'xyz'],
    ['certs', 'frobnicate'],
  ]) {
    const r = run(...args);
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const noCa = spawnSync(process.execPath, [CLI, 'certs', 'issue', '--device', 'x'], { encoding: 'utf8', env: { ...process.env, CHGW_STATEDIR: path.join(dir, 'empty') } });
  t.is(noCa.status, 2);
  t.regex(noCa.stderr, /run `callhome-gateway certs init` first/);
});
