// Host keys for simulated devices: ed25519 keys made from a 32-byte seed (random, or derived
// from a fleet seed so the same inventory stays valid across runs), written in the OpenSSH
// private key format ssh2 and ssh-keygen read, and fingerprinted the way `ssh-keygen -lf` does.
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

/** PKCS#8 DER prefix of an ed25519 private key; the 32-byte seed follows (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** `SHA256:` + unpadded base64 of the SHA-256 of the public key blob, as `ssh-keygen -lf` prints. */
export function fingerprintOf(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** A seed for device `id` derived from a fleet seed; the same inputs give the same key. */
export function deriveSeed(fleetSeed: string, id: string): Buffer {
  return createHash('sha256').update(`callhome-gateway simulator\0${fleetSeed}\0${id}`).digest();
}

/** An unencrypted OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`) for an ed25519 seed. */
export function ed25519PrivateKeyFromSeed(seed: Buffer = randomBytes(32), comment = ''): string {
  if (seed.length !== 32) throw new RangeError('an ed25519 seed is 32 bytes');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const jwk = key.export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x!, 'base64url');
  const type = sshString('ssh-ed25519');
  const pubBlob = Buffer.concat([type, sshString(pub)]);
  const check = createHash('sha256').update(seed).digest().subarray(0, 4);
  let priv = Buffer.concat([check, check, type, sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // openssh-key-v1: pad the private section to the cipher block size (8 for "none") with 1, 2, 3, …
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_v, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(Buffer.alloc(0)), uint32(1), sshString(pubBlob), sshString(priv)]);
  const b64 = body
    .toString('base64')
    .replace(/(.{70})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Parses a private key for ssh2 (OpenSSH, PEM or PuTTY format). */
export function parsePrivateKey(key: string | Buffer | ParsedKey, passphrase?: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) throw new Error(`cannot parse host key: ${parsed.message}`);
  const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
  if (!k.isPrivateKey()) throw new Error('the host key is not a private key');
  return k;
}

/** `ssh-ed25519 AAAA… comment`, an authorized_keys / known_hosts style line. */
export function publicKeyLine(key: ParsedKey, comment?: string): string {
  const line = `${key.type} ${key.getPublicSSH().toString('base64')}`;
  return comment ? `${line} ${comment}` : line;
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([uint32(b.length), b]);
}
