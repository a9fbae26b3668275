// Device certificate identity: pins, CA + identity rule (cn, serialNumber, san), expiry,
// CRLs and unknown issuers, each refused with its own code and reason. Certificates come
// from the same node-forge code the CLI uses; OpenSSL checks that they are well formed.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseInventory } from '../../src/inventory/inventory.js';
import { isGatewayError } from '../../src/errors.js';
import { createCa, createCrl, issueCertificate } from '../../src/tls/certs.js';
import { parseCrl } from '../../src/tls/crl.js';
import { identifyCertificate, normalizeCertFingerprint, type TlsIdentity } from '../../src/tls/identity.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-tls-id-'));
const ca = createCa('test CA');
const otherCa = createCa('other CA');
const x = (pem: string) => new X509Certificate(pem);
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const caFile = file('ca.crt', ca.certPem);
const entry = (id: string, tls: Partial<TlsIdentity>) => ({ id, tls: { fingerprints: [], ca: [x(ca.certPem)], identity: 'cn' as const, ...tls } });
const read = (f: string) => readFileSync(f);

test('OpenSSL accepts the CA, device certificates in every identity field, and the CRL', (t) => {
  const dev = issueCertificate(ca, { id: 'edge-9', field: 'serialNumber', usage: 'server' });
  const devFile = file('edge-9.crt', dev.certPem);
  t.regex(execFileSync('openssl', ['verify', '-CAfile', caFile, devFile], { encoding: 'utf8' }), /OK/);
  t.regex(execFileSync('openssl', ['x509', '-in', devFile, '-noout', '-subject'], { encoding: 'utf8' }), /serialNumber = edge-9/);
  const crl = file('ca.crl', createCrl(ca, [dev.serial]));
  const out = execFileSync('openssl', ['crl', '-in', crl, '-noout', '-text', '-CAfile', caFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // OpenSSL prints whole bytes ("0B7B…"); compare without leading zeros on both sides.
  t.is(/Serial Number: ([0-9A-F]+)/.exec(out)?.[1]?.replace(/^0+/, ''), dev.serial.toUpperCase().replace(/^0+/, ''));
  t.true(parseCrl(Buffer.from(createCrl(ca, [dev.serial]))).revoked.has(dev.serial.toUpperCase().replace(/^0+/, '')));
});

test('CA + identity rule: cn, serialNumber and san each name the device', (t) => {
  for (const field of ['cn', 'serialNumber', 'san'] as const) {
    const c = issueCertificate(ca, { id: `dev-${field}`, field, usage: 'server' });
    const v = identifyCertificate([x(c.certPem)], [entry('dev-x', { identity: field }), entry(`dev-${field}`, { identity: field })], read);
    t.true(v.ok, field);
    if (v.ok) t.is(v.entry.id, `dev-${field}`);
  }
});

test('refusals: wrong identity, expired, revoked, unknown issuer, self-signed; each its own code', (t) => {
  const wrong = issueCertificate(ca, { id: 'someone-else', usage: 'server' });
  const expired = issueCertificate(ca, { id: 'dev-1', usage: 'server', notBefore: new Date(Date.now() - 9e8), notAfter: new Date(Date.now() - 1e6) });
  const revoked = issueCertificate(ca, { id: 'dev-1', usage: 'server' });
  const foreign = issueCertificate(otherCa, { id: 'dev-1', usage: 'server' });
  const crlFile = file('revoked.crl', createCrl(ca, [revoked.serial]));
  const inv = [entry('dev-1', { crlFile })];
  const verdict = (pem: string) => identifyCertificate([x(pem)], inv, read);
  const codes = [wrong, expired, revoked, foreign, otherCa].map((c) => {
    const v = verdict(c.certPem);
    return v.ok ? 'ok' : `${v.error.code} ${v.error.message}`;
  });
  t.regex(codes[0]!, /^GW_ERR_CERT_IDENTITY wrong identity: .*names cn=someone-else/);
  t.regex(codes[1]!, /^GW_ERR_CERT_EXPIRED certificate expired on/);
  t.regex(codes[2]!, /^GW_ERR_CERT_REVOKED certificate serial .* is revoked/);
  t.regex(codes[3]!, /^GW_ERR_UNKNOWN_DEVICE certificate .* from unknown issuer CN=other CA/);
  t.regex(codes[4]!, /^GW_ERR_UNKNOWN_DEVICE self-signed certificate/);
  // A current certificate under the same CRL passes; a CRL signed by another CA refuses.
  const fine = issueCertificate(ca, { id: 'dev-1', usage: 'server' });
  t.true(verdict(fine.certPem).ok);
  const forged = file('forged.crl', createCrl(otherCa, []));
  const v = identifyCertificate([x(fine.certPem)], [entry('dev-1', { crlFile: forged })], read);
  t.false(v.ok);
  if (!v.ok) t.regex(v.error.message, /not signed by the device's CA/);
});

test('pinned fingerprints accept a self-signed certificate in any usual spelling', (t) => {
  const self = createCa('pinned-device');
  const fp = x(self.certPem).fingerprint256;
  for (const spelling of [fp, fp.toLowerCase(), `sha256 Fingerprint=${fp}`, fp.replace(/:/g, '')]) {
    t.is(normalizeCertFingerprint(spelling), fp);
  }
  const v = identifyCertificate([x(self.certPem)], [{ id: 'p', tls: { fingerprints: [fp], ca: [], identity: 'cn' as const } }], read);
  t.true(v.ok);
  t.throws(() => normalizeCertFingerprint('AB:CD'), { message: /malformed certificate fingerprint/ });
});

test('inventory tls: entries validate; TLS-only entries need no credentials; mistakes name the key', (t) => {
  const crl = file('ok.crl', createCrl(ca, []));
  const inv = parseInventory(
    `devices:\n  - id: t1\n    tls: { ca: ${caFile}, identity: san, crl: ${crl} }\n  - id: t2\n    tls: { fingerprints: ["${x(ca.certPem).fingerprint256}"], maxBase: "1.0" }\n`,
    path.join(dir, 'devices.yaml'),
  );
  t.is(inv.tlsEntries().length, 2);
  t.is(inv.get('t1')!.tls!.identity, 'san');
  t.is(inv.get('t2')!.tls!.maxBase, '1.0');
  const single = parseInventory(
    `devices:\n  - id: s\n    ssh: { hostKeys: ["SHA256:9C9FsWemPKcbejGUTAQVXbm0gVHhwnArckugaot5fB4"] }\n    credentials: { username: a, password: b }\n    sessions: single\n`,
    path.join(dir, 'devices.yaml'),
  );
  t.is(single.get('s')!.sessions, 'single');
  const bad: Array<[string, RegExp]> = [
    ['tls: { }', /tls needs fingerprints or ca/],
    ['tls: { ca: nope.crt }', /tls\.ca .*nope\.crt cannot be read/],
    [`tls: { ca: ${caFile}, identity: email }`, /tls\.identity must be one of cn, serialNumber, san/],
    ['tls: { fingerprints: ["AB"] }', /malformed certificate fingerprint/],
    [`tls: { ca: ${caFile}, crl: missing.crl }`, /tls\.crl .* cannot be read/],
    [`tls: { ca: ${caFile}, verify: no }`, /unknown key "tls\.verify"/],
    [`tls: { ca: ${caFile}, maxBase: 2 }`, /tls\.maxBase must be/],
    [`tls: { ca: ${caFile} }\n    sessions: one`, /sessions must be "auto", "single" or "multiple"/],
  ];
  for (const [yaml, re] of bad) {
    const err = t.throws(() => parseInventory(`devices:\n  - id: t\n    ${yaml}\n`, path.join(dir, 'devices.yaml')));
    t.true(isGatewayError(err, 'GW_ERR_INVENTORY'));
    t.regex(err!.message, re);
  }
});
