// Certificates for TLS call home without OpenSSL gymnastics (node-forge): a CA and the
// gateway's client certificate in <stateDir>/tls (RFC 8071 §4.2 C3/C4: the gateway is the
// TLS client and presents a certificate), device certificates carrying the device id in
// the field the inventory's identity rule reads, and CRLs signed by the same CA.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { GatewayError } from '../errors.js';

export type IdentityField = 'cn' | 'serialNumber' | 'san';
export const IDENTITY_FIELDS: readonly IdentityField[] = ['cn', 'serialNumber', 'san'];

/** Where `certs init` puts the gateway's TLS material, relative to stateDir. */
export function tlsPaths(stateDir: string) {
  const dir = path.join(stateDir, 'tls');
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    gatewayCert: path.join(dir, 'gateway.crt'),
    gatewayKey: path.join(dir, 'gateway.key'),
  };
}

export interface CertPair {
  certPem: string;
  keyPem: string;
  serial: string;
}

function serialHex(): string {
  // Positive 16-byte serial (RFC 5280 §4.1.2.2: up to 20 octets, positive).
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

function newKeys(): forge.pki.rsa.KeyPair {
  // forge delegates to node's native generator when it is available.
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
  days?: number;
}

function setValidity(cert: forge.pki.Certificate, v: Validity, defaultDays: number): void {
  const notBefore = v.notBefore ?? new Date(Date.now() - 5 * 60_000); // small clock skew allowance
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = v.notAfter ?? new Date(notBefore.getTime() + (v.days ?? defaultDays) * 86_400_000);
}

function toPair(cert: forge.pki.Certificate, keys: forge.pki.rsa.KeyPair): CertPair {
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey), serial: cert.serialNumber };
}

/** A self-signed CA certificate for signing the gateway's and the devices' certificates. */
export function createCa(commonName = 'callhome-gateway CA', validity: Validity = {}): CertPair {
  const keys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialHex();
  setValidity(cert, validity, 3650);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return toPair(cert, keys);
}

export interface IssueOptions extends Validity {
  /** Subject CN, also the id when `field` is cn. */
  id: string;
  /** Which field carries the id (the inventory's identity rule). */
  field?: IdentityField;
  /**
   * extendedKeyUsage: serverAuth for devices (TLS servers), clientAuth for the gateway;
   * a replica's peer certificate is both, and carries PEER_UNIT in its subject (peerCertificate()).
   */
  usage: 'server' | 'client' | 'peer';
}

/** A leaf certificate signed by `ca`. */
export function issueCertificate(ca: { certPem: string; keyPem: string }, opts: IssueOptions): CertPair {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialHex();
  setValidity(cert, opts, 825);
  const field = opts.field ?? 'cn';
  const subject: forge.pki.CertificateField[] = [{ name: 'commonName', value: opts.id }];
  if (opts.usage === 'peer') subject.push({ name: 'organizationalUnitName', value: PEER_UNIT });
  // IDevID-style: the id in subject serialNumber (2.5.4.5), CN kept for people to read.
  if (field === 'serialNumber') subject.push({ type: '2.5.4.5', value: opts.id, valueTagClass: forge.asn1.Type.PRINTABLESTRING as never });
  cert.setSubject(subject);
  cert.setIssuer(caCert.subject.attributes);
  const extensions: unknown[] = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: opts.usage !== 'client', clientAuth: opts.usage !== 'server' },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (field === 'san') extensions.push({ name: 'subjectAltName', altNames: [{ type: 2, value: opts.id }] });
  cert.setExtensions(extensions as never);
  cert.sign(caKey, forge.md.sha256.create());
  return toPair(cert, keys);
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export interface InitResult {
  created: boolean;
  paths: ReturnType<typeof tlsPaths>;
}

/**
 * Creates the CA and the gateway's client certificate in <stateDir>/tls unless they exist
 * (an existing CA is never replaced silently: devices trust it). `force` replaces them.
 */
export function initCertificates(stateDir: string, { force = false }: { force?: boolean } = {}): InitResult {
  const paths = tlsPaths(stateDir);
  const present = [paths.caCert, paths.caKey, paths.gatewayCert, paths.gatewayKey].filter((f) => existsSync(f));
  if (present.length === 4 && !force) return { created: false, paths };
  if (present.length > 0 && !force) {
    throw new GatewayError('GW_ERR_USAGE', `${paths.dir} holds only part of the TLS material (${present.map((p) => path.basename(p)).join(', ')}); remove it or use --force`);
  }
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const ca = createCa();
  const gw = issueCertificate(ca, { id: 'callhome-gateway', usage: 'client' });
  writeFileSync(paths.caCert, ca.certPem);
  writeSecret(paths.caKey, ca.keyPem);
  writeFileSync(paths.gatewayCert, gw.certPem);
  writeSecret(paths.gatewayKey, gw.keyPem);
  return { created: true, paths };
}

export function loadCa(stateDir: string): { certPem: string; keyPem: string } {
  const paths = tlsPaths(stateDir);
  try {
    return { certPem: readFileSync(paths.caCert, 'utf8'), keyPem: readFileSync(paths.caKey, 'utf8') };
  } catch (err) {
    throw new GatewayError('GW_ERR_USAGE', `no CA in ${paths.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}): run \`callhome-gateway certs init\` first`);
  }
}

export interface IssuedFiles {
  cert: string;
  key: string;
  ca: string;
  serial: string;
}

/** Issues a device certificate into `outDir` as <id>.crt / <id>.key, plus ca.crt (what the device must trust). */
export function issueDeviceFiles(stateDir: string, opts: Omit<IssueOptions, 'usage'> & { outDir: string }): IssuedFiles {
  const ca = loadCa(stateDir);
  const pair = issueCertificate(ca, { ...opts, usage: 'server' });
  mkdirSync(opts.outDir, { recursive: true });
  const files = { cert: path.join(opts.outDir, `${opts.id}.crt`), key: path.join(opts.outDir, `${opts.id}.key`), ca: path.join(opts.outDir, 'ca.crt') };
  writeFileSync(files.cert, pair.certPem);
  writeSecret(files.key, pair.keyPem);
  writeFileSync(files.ca, ca.certPem);
  return { ...files, serial: pair.serial };
}

/**
 * The subject OU of a replica's peer certificate. A replica accepts a forwarded session only
 * from a certificate of the gateway's CA that carries it (with serverAuth and clientAuth):
 * device certificates and the gateway's call-home client certificate, from the same CA, never do.
 */
export const PEER_UNIT = 'callhome-gateway peer';

export interface PeerFiles {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Issues this replica's peer certificate (cluster mode: mutual TLS between replicas) from
 * the CA in <stateDir>/tls, and writes it with its key and the CA certificate to `files`.
 * One certificate may serve every replica (a Kubernetes Secret): it proves membership, and
 * the replicas find each other by the addresses Redis records, not by names in certificates.
 */
export function issuePeerFiles(stateDir: string, files: PeerFiles, validity: Validity = {}): { serial: string } {
  const ca = loadCa(stateDir);
  const pair = issueCertificate(ca, { ...validity, id: 'callhome-gateway peer', usage: 'peer' });
  for (const f of [files.cert, files.key, files.ca]) mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(files.cert, pair.certPem);
  writeSecret(files.key, pair.keyPem);
  if (path.resolve(files.ca) !== path.resolve(tlsPaths(stateDir).caCert)) writeFileSync(files.ca, ca.certPem);
  return { serial: pair.serial };
}

// --- CRLs (RFC 5280 §5). node-forge reads and writes certificates but not CRLs, so the
// TBSCertList is assembled with its ASN.1 writer and signed with node's crypto.

const A = forge.asn1;

function utcTime(d: Date) {
  return A.create(A.Class.UNIVERSAL, A.Type.UTCTIME, false, A.dateToUtcTime(d));
}

function integerFromHex(hex: string) {
  let h = hex.length % 2 ? '0' + hex : hex;
  if (parseInt(h.slice(0, 2), 16) & 0x80) h = '00' + h;
  return A.create(A.Class.UNIVERSAL, A.Type.INTEGER, false, forge.util.hexToBytes(h));
}

/** A v2 CRL signed by `ca` (sha256WithRSAEncryption) listing `serials` (hex) as revoked, in PEM. */
export function createCrl(ca: { certPem: string; keyPem: string }, serials: string[], { days = 30, now = new Date() } = {}): string {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const sigAlg = A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, [
    A.create(A.Class.UNIVERSAL, A.Type.OID, false, A.oidToDer(forge.pki.oids.sha256WithRSAEncryption!).getBytes()),
    A.create(A.Class.UNIVERSAL, A.Type.NULL, false, ''),
  ]);
  const tbsParts = [
    A.create(A.Class.UNIVERSAL, A.Type.INTEGER, false, String.fromCharCode(1)), // v2
    sigAlg,
    forge.pki.distinguishedNameToAsn1(caCert.subject),
    utcTime(now),
    utcTime(new Date(now.getTime() + days * 86_400_000)),
  ];
  if (serials.length > 0) {
    tbsParts.push(
      A.create(
        A.Class.UNIVERSAL,
        A.Type.SEQUENCE,
        true,
        serials.map((s) => A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, [integerFromHex(s.replace(/:/g, '')), utcTime(now)])),
      ),
    );
  }
  const tbs = A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, tbsParts);
  const tbsDer = Buffer.from(A.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, createPrivateKey(ca.keyPem));
  const crl = A.create(A.Class.UNIVERSAL, A.Type.SEQUENCE, true, [
    tbs,
    sigAlg,
    A.create(A.Class.UNIVERSAL, A.Type.BITSTRING, false, String.fromCharCode(0) + signature.toString('binary')),
  ]);
  const b64 = Buffer.from(A.toDer(crl).getBytes(), 'binary').toString('base64');
  return `-----BEGIN X509 CRL-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END X509 CRL-----\n`;
}
