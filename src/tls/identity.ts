// TLS device identity (RFC 8071 §4.2 C5/C6, RFC 7589 §5): the certificate a device presents
// is matched against the inventory's `tls:` entries, either by a pinned SHA-256 fingerprint
// or by a CA plus an identity rule naming the field that carries the device id. Each way
// of failing has its own code and one-line reason, so an operator can tell them apart.
import { X509Certificate } from 'node:crypto';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { IdentityField } from './certs.js';
import { crlSignedBy, normalizeSerial, parseCrl } from './crl.js';

/** What the inventory says about one device's TLS identity. */
export interface TlsIdentity {
  /** Pinned fingerprints, `AB:CD:…` upper case, as `openssl x509 -fingerprint -sha256` prints. */
  fingerprints: string[];
  /** Trust anchors for the CA + identity rule; empty when only pins are used. */
  ca: X509Certificate[];
  /** Which certificate field must equal the device id. */
  identity: IdentityField;
  /** A CRL file, read at each connection so a replaced file takes effect at once. */
  crlFile?: string;
}

export interface TlsCandidate {
  id: string;
  tls: TlsIdentity;
}

export type TlsVerdict<E extends TlsCandidate> =
  { ok: true; entry: E; fingerprint: string; how: 'pinned' | 'ca' } | { ok: false; error: GatewayError; fingerprint: string; unknown: boolean };

const FP_RE = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** An inventory fingerprint in any of the usual spellings, as `AB:CD:…`; throws if malformed. */
export function normalizeCertFingerprint(text: string): string {
  let t = text
    .trim()
    .replace(/^sha-?256\s+fingerprint\s*=\s*/i, '')
    .toUpperCase();
  if (/^[0-9A-F]{64}$/.test(t)) t = t.match(/../g)!.join(':');
  if (!FP_RE.test(t)) throw new Error(`malformed certificate fingerprint ${JSON.stringify(text)} (want the 32 colon-separated hex bytes of openssl x509 -fingerprint -sha256)`);
  return t;
}

/** The values of one field of a certificate that can carry the device id. */
export function identityValues(cert: X509Certificate, field: IdentityField): string[] {
  if (field === 'san') {
    const san = cert.subjectAltName ?? '';
    return san
      .split(/,\s*/)
      .map((part) => /^(?:DNS|URI):(.*)$/.exec(part.trim())?.[1])
      .filter((v): v is string => v !== undefined && v !== '');
  }
  const key = field === 'cn' ? 'CN' : 'serialNumber';
  return cert.subject
    .split('\n')
    .map((line) => {
      const eq = line.indexOf('=');
      return eq > 0 && line.slice(0, eq) === key ? line.slice(eq + 1).replace(/^"(.*)"$/, '$1') : undefined;
    })
    .filter((v): v is string => v !== undefined);
}

function oneLine(s: string): string {
  return s.replace(/\n/g, ', ');
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    // X509Certificate#checkIssued(other): "was this certificate issued by other".
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** The certificates from the leaf up to (and including) one of `anchors`, or undefined. */
function pathTo(chain: X509Certificate[], anchors: X509Certificate[]): X509Certificate[] | undefined {
  const path = [chain[0]!];
  for (let depth = 0; depth < 8; depth++) {
    const cur = path[path.length - 1]!;
    const anchor = anchors.find((a) => issuedBy(cur, a));
    if (anchor) return anchor.fingerprint256 === cur.fingerprint256 ? path : [...path, anchor];
    const next = chain.find((c) => c !== cur && !path.includes(c) && issuedBy(cur, c));
    if (!next) return undefined;
    path.push(next);
  }
  return undefined;
}

function expiry(certs: X509Certificate[], now: Date): string | undefined {
  for (const [i, c] of certs.entries()) {
    const who = i === 0 ? 'certificate' : `issuer certificate ${oneLine(c.subject)}`;
    if (now.getTime() > new Date(c.validTo).getTime()) return `${who} expired on ${new Date(c.validTo).toISOString()}`;
    if (now.getTime() < new Date(c.validFrom).getTime()) return `${who} is not valid before ${new Date(c.validFrom).toISOString()}`;
  }
  return undefined;
}

function fail(code: ErrorCode, message: string, fingerprint?: string): GatewayError {
  return new GatewayError(code, message, fingerprint ? { fields: { fingerprint } } : undefined);
}

/**
 * Decides which device presented `chain` (leaf first, then what the peer sent), or why none.
 * `readFile` reads CRL files (injected for tests).
 */
export function identifyCertificate<E extends TlsCandidate>(chain: X509Certificate[], entries: Iterable<E>, readFile: (file: string) => Buffer, now = new Date()): TlsVerdict<E> {
  const leaf = chain[0];
  if (!leaf) return { ok: false, error: fail('GW_ERR_UNKNOWN_DEVICE', 'device presented no certificate'), fingerprint: '', unknown: false };
  const fingerprint = leaf.fingerprint256;
  const refuse = (code: ErrorCode, message: string, unknown = false): TlsVerdict<E> => ({ ok: false, error: fail(code, message, fingerprint), fingerprint, unknown });
  const list = [...entries];

  const pinned = list.find((e) => e.tls.fingerprints.includes(fingerprint));
  if (pinned) {
    const late = expiry([leaf], now);
    if (late) return refuse('GW_ERR_CERT_EXPIRED', `pinned ${late} (device ${pinned.id})`);
    return { ok: true, entry: pinned, fingerprint, how: 'pinned' };
  }

  // RFC 8071 §4.2 C5/C6: a certificate is trusted through the CA of the entry it names.
  const chained = list.map((e) => ({ e, path: e.tls.ca.length > 0 ? pathTo(chain, e.tls.ca) : undefined })).filter((x) => x.path);
  if (chained.length === 0) {
    const selfSigned = issuedBy(leaf, leaf);
    return refuse(
      'GW_ERR_UNKNOWN_DEVICE',
      selfSigned
        ? `self-signed certificate ${fingerprint} (${oneLine(leaf.subject)}) is pinned by no device`
        : `certificate ${fingerprint} (${oneLine(leaf.subject)}) from unknown issuer ${oneLine(leaf.issuer)} is pinned by no device`,
      true,
    );
  }
  const named = chained.find(({ e }) => identityValues(leaf, e.tls.identity).includes(e.id));
  if (!named) {
    const rules = [...new Set(chained.map(({ e }) => e.tls.identity))];
    const shown = rules.map((r) => `${r}=${identityValues(leaf, r).join('+') || '(none)'}`).join(', ');
    return refuse('GW_ERR_CERT_IDENTITY', `wrong identity: certificate chains to the CA of ${chained.map(({ e }) => e.id).join(', ')} but names ${shown}`);
  }
  const { e: entry, path } = named;
  const late = expiry(path!, now);
  if (late) return refuse('GW_ERR_CERT_EXPIRED', `${late} (device ${entry.id})`);
  if (entry.tls.crlFile) {
    let crl;
    try {
      crl = parseCrl(readFile(entry.tls.crlFile));
    } catch (err) {
      // Security by default: a CRL that is configured but unreadable refuses, it does not wave through.
      return refuse(
        'GW_ERR_CERT_REVOKED',
        `CRL ${entry.tls.crlFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); refusing device ${entry.id}`,
      );
    }
    const signer = path!.slice(1).find((ca) => crlSignedBy(crl, ca));
    if (!signer) return refuse('GW_ERR_CERT_REVOKED', `CRL ${entry.tls.crlFile} is not signed by the device's CA; refusing device ${entry.id}`);
    if (crl.nextUpdate && crl.nextUpdate.getTime() < now.getTime()) {
      return refuse('GW_ERR_CERT_REVOKED', `CRL ${entry.tls.crlFile} is out of date (nextUpdate ${crl.nextUpdate.toISOString()}); refusing device ${entry.id}`);
    }
    // The CRL covers the certificates its signer issued: the one just below it on the path.
    const covered = path![path!.indexOf(signer) - 1]!;
    if (crl.revoked.has(normalizeSerial(covered.serialNumber))) {
      return refuse('GW_ERR_CERT_REVOKED', `certificate serial ${normalizeSerial(covered.serialNumber)} is revoked by ${entry.tls.crlFile} (device ${entry.id})`);
    }
  }
  return { ok: true, entry, fingerprint, how: 'ca' };
}
