// Device identity: SSH host keys and certificates reduced to fingerprints in the same
// form ssh-keygen and openssl print, so an operator can copy them into the inventory.
// A device is its key, never its address (RFC 8071 §4.1 C5/C6).
import { createHash, X509Certificate } from 'node:crypto';
import ssh2 from 'ssh2';
import { GatewayError } from '../errors.js';

const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** `SHA256:<base64 without padding>` of an SSH public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOfKeyBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  if (len > 64 || 4 + len > blob.length) return 'unknown';
  return blob.subarray(4, 4 + len).toString('latin1');
}

export function isFingerprint(text: string): boolean {
  return FINGERPRINT_RE.test(text);
}

/** The blob of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`). */
export function blobOfPublicKeyLine(line: string): Buffer {
  const parsed = ssh2.utils.parseKey(line.trim());
  if (parsed instanceof Error) throw new GatewayError('GW_ERR_INVENTORY', `not an SSH public key: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new GatewayError('GW_ERR_INVENTORY', 'not an SSH public key');
  return key.getPublicSSH();
}

/** An inventory host-key entry (fingerprint or public key line) as a fingerprint. */
export function normalizeHostKey(entry: string): string {
  const text = entry.trim();
  if (text.startsWith('SHA256:')) {
    if (!isFingerprint(text)) throw new GatewayError('GW_ERR_INVENTORY', `malformed fingerprint ${JSON.stringify(text)}`);
    return text;
  }
  return fingerprintOfKeyBlob(blobOfPublicKeyLine(text));
}

const KEY_TYPE_LABEL: Record<string, string> = {
  'ssh-ed25519': 'ED25519',
  'ssh-rsa': 'RSA',
  'ecdsa-sha2-nistp256': 'ECDSA',
  'ecdsa-sha2-nistp384': 'ECDSA',
  'ecdsa-sha2-nistp521': 'ECDSA',
  'ssh-dss': 'DSA',
};

function readSshString(blob: Buffer, offset: number): [Buffer, number] {
  const len = blob.readUInt32BE(offset);
  return [blob.subarray(offset + 4, offset + 4 + len), offset + 4 + len];
}

/** Key size in bits as ssh-keygen reports it. */
export function keyBitsOfBlob(blob: Buffer): number {
  const type = keyTypeOfBlob(blob);
  if (type === 'ssh-ed25519') return 256;
  if (type.startsWith('ecdsa-sha2-nistp')) return Number(type.slice('ecdsa-sha2-nistp'.length));
  if (type === 'ssh-rsa' || type === 'ssh-dss') {
    let [, off] = readSshString(blob, 0);
    if (type === 'ssh-rsa') [, off] = readSshString(blob, off); // exponent
    let [n] = readSshString(blob, off);
    while (n.length > 0 && n[0] === 0) n = n.subarray(1);
    return n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  }
  return 0;
}

/**
 * One line per key or certificate found in `text`, formatted exactly like
 * `ssh-keygen -lf` (`256 SHA256:… comment (ED25519)`) or, for a PEM certificate,
 * `openssl x509 -noout -fingerprint -sha256` (`sha256 Fingerprint=AB:CD:…`).
 */
export function describeKeyMaterial(text: string): string[] {
  const out: string[] = [];
  const pemCerts = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (pemCerts) {
    for (const pem of pemCerts) out.push(`sha256 Fingerprint=${new X509Certificate(pem).fingerprint256}`);
    return out;
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    const parsed = ssh2.utils.parseKey(text);
    if (parsed instanceof Error) throw new GatewayError('GW_ERR_USAGE', `cannot read private key: ${parsed.message}`);
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    const blob = key.getPublicSSH();
    out.push(formatKeyLine(blob, key.comment || 'no comment'));
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const blob = blobOfPublicKeyLine(fields.slice(0, 2).join(' '));
    out.push(formatKeyLine(blob, fields.slice(2).join(' ') || 'no comment'));
  }
  if (out.length === 0) throw new GatewayError('GW_ERR_USAGE', 'no SSH public key or PEM certificate found');
  return out;
}

function formatKeyLine(blob: Buffer, comment: string): string {
  const type = keyTypeOfBlob(blob);
  return `${keyBitsOfBlob(blob)} ${fingerprintOfKeyBlob(blob)} ${comment} (${KEY_TYPE_LABEL[type] ?? type.toUpperCase()})`;
}
