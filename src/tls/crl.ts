// Reads an X.509 CRL (RFC 5280 §5) far enough to honour it: who signed it, until when it
// is current, which serial numbers it revokes, and whether its signature is the CA's.
// Node's crypto verifies certificates but has no CRL reader; node-forge's ASN.1 parser does the DER.
import { X509Certificate, verify as cryptoVerify } from 'node:crypto';
import forge from 'node-forge';

export interface Crl {
  nextUpdate?: Date;
  /** Revoked serial numbers, upper-case hex without leading zeros (as X509Certificate.serialNumber). */
  revoked: Set<string>;
  tbsDer: Buffer;
  signatureOid: string;
  signature: Buffer;
}

const HASH_OF_SIG_OID: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

export function normalizeSerial(hex: string): string {
  return hex
    .replace(/[:\s]/g, '')
    .toUpperCase()
    .replace(/^0+(?=.)/, '');
}

function derOf(text: Buffer): Buffer {
  const s = text.toString('latin1');
  const m = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(s);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : text;
}

function timeOf(node: forge.asn1.Asn1): Date {
  return node.type === forge.asn1.Type.UTCTIME ? forge.asn1.utcTimeToDate(node.value as string) : forge.asn1.generalizedTimeToDate(node.value as string);
}

// The signed bytes exactly as received: the first element inside the outer SEQUENCE.
function tlvEnd(der: Buffer, at: number): { body: number; end: number } {
  let len = der[at + 1]!;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + der[body + k]!;
    body += n;
  }
  return { body, end: body + len };
}

function firstElementOf(der: Buffer): Buffer {
  const outer = tlvEnd(der, 0);
  return der.subarray(outer.body, tlvEnd(der, outer.body).end);
}

/** Parses a PEM or DER CRL. Throws on anything that is not one. */
export function parseCrl(data: Buffer): Crl {
  const der = derOf(data);
  const A = forge.asn1;
  const root = A.fromDer(forge.util.createBuffer(der.toString('binary')), { decodeBitStrings: false } as never);
  const [tbs, sigAlg, sigBits] = root.value as forge.asn1.Asn1[];
  if (!tbs || !sigAlg || !sigBits) throw new Error('not a CRL: expected tbsCertList, signatureAlgorithm, signature');
  const fields = tbs.value as forge.asn1.Asn1[];
  let i = 0;
  if (fields[i]?.type === A.Type.INTEGER) i++; // version
  i++; // signature algorithm (repeated inside)
  i++; // issuer: the signature check below binds the CRL to the CA
  i++; // thisUpdate
  let nextUpdate: Date | undefined;
  const maybeNext = fields[i];
  if (maybeNext && (maybeNext.type === A.Type.UTCTIME || maybeNext.type === A.Type.GENERALIZEDTIME)) {
    nextUpdate = timeOf(maybeNext);
    i++;
  }
  const revoked = new Set<string>();
  const list = fields[i];
  if (list && list.tagClass === A.Class.UNIVERSAL && list.type === A.Type.SEQUENCE) {
    for (const entry of list.value as forge.asn1.Asn1[]) {
      const serial = (entry.value as forge.asn1.Asn1[])[0]!;
      revoked.add(normalizeSerial(forge.util.bytesToHex(serial.value as string)));
    }
  }
  const sigBytes = Buffer.from(sigBits.value as string, 'binary');
  return {
    ...(nextUpdate ? { nextUpdate } : {}),
    revoked,
    tbsDer: firstElementOf(der),
    signatureOid: A.derToOid((sigAlg.value as forge.asn1.Asn1[])[0]!.value as string),
    signature: sigBytes.subarray(1), // drop the BIT STRING's unused-bits octet
  };
}

/** True when `ca` signed this CRL. */
export function crlSignedBy(crl: Crl, ca: X509Certificate): boolean {
  const hash = HASH_OF_SIG_OID[crl.signatureOid];
  if (!hash) return false;
  try {
    return cryptoVerify(hash, crl.tbsDer, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}
