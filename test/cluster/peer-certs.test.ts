// `callhome-gateway certs peer`: a replica's peer certificate from the gateway's CA, written
// where cluster.peer.* point (or --out), cross-checked with OpenSSL; only such a certificate
// is a peer certificate, not a device's or the gateway's call-home one from the same CA.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { notAPeer } from '../../src/cluster/peer-tls.js';

const CLI = path.resolve('dist/src/cli/main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'chgw-peer-certs-'));
const state = path.join(dir, 'state');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CHGW_STATEDIR: state, ...env } });
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

/** The fields notAPeer reads, as node's TLS would report them for this certificate file. */
function asPeerCertificate(file: string) {
  const x = new X509Certificate(readFileSync(file));
  const subject: Record<string, string | string[]> = {};
  for (const line of x.subject.split('\n')) {
    const [k, v] = line.split('=') as [string, string];
    subject[k] = subject[k] === undefined ? v : ([] as string[]).concat(subject[k]!, v);
  }
  return { subject, ext_key_usage: x.keyUsage ?? [] } as never;
}

test.serial('certs peer writes peer.crt, peer.key (0600) and ca.crt; OpenSSL verifies it and reads both usages and the marker', (t) => {
  t.is(run(['certs', 'init']).status, 0);
  const out = path.join(dir, 'out');
  const r = run(['certs', 'peer', '--out', out]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^peer certificate .*peer\.crt, key .*peer\.key, CA .*ca\.crt\nserial [0-9A-F]+\nsha256 Fingerprint=/);
  const cert = path.join(out, 'peer.crt');
  t.is(statSync(path.join(out, 'peer.key')).mode & 0o777, 0o600, 'the key is readable by its owner only');
  t.regex(openssl('verify', '-CAfile', path.join(out, 'ca.crt'), cert), /OK/);
  t.is(readFileSync(path.join(out, 'ca.crt'), 'utf8'), readFileSync(path.join(state, 'tls', 'ca.crt'), 'utf8'));
  const text = openssl('x509', '-in', cert, '-noout', '-text');
  t.regex(text, /OU\s*=\s*callhome-gateway peer/);
  t.regex(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  // The key belongs to the certificate.
  const pub = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
  t.is(pub(['x509', '-in', cert, '-noout', '-pubkey']), pub(['pkey', '-in', path.join(out, 'peer.key'), '-pubout']));
  t.is(notAPeer(asPeerCertificate(cert)), undefined);
});

test.serial('without --out it writes to cluster.peer.certFile / keyFile / caFile', (t) => {
  const target = path.join(dir, 'secret');
  const env = {
    CHGW_CLUSTER_PEER_CERTFILE: path.join(target, 'tls.crt'),
    CHGW_CLUSTER_PEER_KEYFILE: path.join(target, 'tls.key'),
    CHGW_CLUSTER_PEER_CAFILE: path.join(target, 'ca.crt'),
  };
  const r = run(['certs', 'peer'], env);
  t.is(r.status, 0, r.stderr);
  t.regex(openssl('verify', '-CAfile', env.CHGW_CLUSTER_PEER_CAFILE, env.CHGW_CLUSTER_PEER_CERTFILE), /OK/);
  t.is(statSync(env.CHGW_CLUSTER_PEER_KEYFILE).mode & 0o777, 0o600);
  // The default place: <stateDir>/tls/peer.crt next to the CA (ca.crt is the CA itself there).
  const d = run(['certs', 'peer']);
  t.is(d.status, 0, d.stderr);
  t.regex(openssl('verify', '-CAfile', path.join(state, 'tls', 'ca.crt'), path.join(state, 'tls', 'peer.crt')), /OK/);
});

test.serial('device and call-home client certificates of the same CA are not peer certificates', (t) => {
  const out = path.join(dir, 'dev');
  t.is(run(['certs', 'issue', '--device', 'edge-1', '--out', out]).status, 0);
  t.regex(notAPeer(asPeerCertificate(path.join(out, 'edge-1.crt'))) ?? '', /not a peer certificate/);
  t.regex(notAPeer(asPeerCertificate(path.join(state, 'tls', 'gateway.crt'))) ?? '', /not a peer certificate/);
  t.is(notAPeer(undefined), 'no certificate');
});

test.serial('certs peer without a CA exits 2 with one line', (t) => {
  const r = spawnSync(process.execPath, [CLI, 'certs', 'peer', '--out', path.join(dir, 'x')], {
    encoding: 'utf8',
    env: { ...process.env, CHGW_STATEDIR: path.join(dir, 'empty') },
  });
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /run `callhome-gateway certs init` first/);
});
