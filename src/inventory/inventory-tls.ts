// The `tls:` block of an inventory entry: pinned fingerprints and/or a CA with an identity
// rule, an optional CRL, and the highest NETCONF base the gateway offers the device.
//   tls:
//     fingerprints: ["AB:CD:…"]        # openssl x509 -fingerprint -sha256 / callhome-gateway fingerprint
//     ca: certs/ca.crt                 # PEM bundle: a file path (relative to the inventory) or inline PEM
//     identity: cn                     # cn | serialNumber | san: the field that must equal the id
//     crl: certs/ca.crl                # optional, PEM or DER, re-read at every connection
//     maxBase: "1.1"                   # "1.0" offers only end-of-message framing to the device
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { IDENTITY_FIELDS, type IdentityField } from '../tls/certs.js';
import { normalizeCertFingerprint, type TlsIdentity } from '../tls/identity.js';

export interface TlsEntry extends TlsIdentity {
  maxBase: '1.0' | '1.1';
}

const TLS_KEYS = new Set(['fingerprints', 'ca', 'identity', 'crl', 'maxBase']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readCaBundle(value: string, baseDir: string): X509Certificate[] {
  let text = value;
  if (!value.includes('-----BEGIN')) {
    const file = path.resolve(baseDir, value);
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`tls.ca ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new Error('tls.ca holds no PEM certificate');
  return pems.map((pem) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new Error(`tls.ca: unreadable certificate: ${(err as Error).message}`);
    }
  });
}

/** Validates one entry's `tls:` mapping; throws an Error whose message names the key. */
export function parseTlsEntry(raw: unknown, baseDir: string): TlsEntry {
  if (!isRecord(raw)) throw new Error('tls must be a mapping');
  for (const key of Object.keys(raw)) if (!TLS_KEYS.has(key)) throw new Error(`unknown key "tls.${key}"`);
  const fingerprints: string[] = [];
  if (raw.fingerprints !== undefined) {
    if (!Array.isArray(raw.fingerprints)) throw new Error('tls.fingerprints must be a list');
    for (const f of raw.fingerprints) {
      if (typeof f !== 'string') throw new Error('tls.fingerprints entries must be strings');
      fingerprints.push(normalizeCertFingerprint(f));
    }
  }
  let ca: X509Certificate[] = [];
  if (raw.ca !== undefined) {
    if (typeof raw.ca !== 'string') throw new Error('tls.ca must be a file path or PEM text');
    ca = readCaBundle(raw.ca, baseDir);
  }
  if (fingerprints.length === 0 && ca.length === 0) throw new Error('tls needs fingerprints or ca');
  const identity = (raw.identity ?? 'cn') as IdentityField;
  if (!IDENTITY_FIELDS.includes(identity)) throw new Error(`tls.identity must be one of ${IDENTITY_FIELDS.join(', ')}`);
  if (raw.identity !== undefined && ca.length === 0) throw new Error('tls.identity applies to tls.ca, which is missing');
  let crlFile: string | undefined;
  if (raw.crl !== undefined) {
    if (typeof raw.crl !== 'string') throw new Error('tls.crl must be a file path');
    if (ca.length === 0) throw new Error('tls.crl applies to tls.ca, which is missing');
    crlFile = path.resolve(baseDir, raw.crl);
    try {
      readFileSync(crlFile);
    } catch (err) {
      throw new Error(`tls.crl ${crlFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const maxBase = raw.maxBase === undefined ? '1.1' : String(raw.maxBase);
  if (maxBase !== '1.0' && maxBase !== '1.1') throw new Error('tls.maxBase must be "1.0" or "1.1"');
  return { fingerprints, ca, identity, ...(crlFile ? { crlFile } : {}), maxBase };
}
