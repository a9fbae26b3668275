// The gateway's own northbound SSH host key: generated (ed25519) on first start, then
// kept, so managers that pinned it keep trusting the gateway across restarts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { GatewayError } from '../errors.js';

export interface HostKey {
  privateKey: Buffer;
  /** `SHA256:` fingerprint, for the start-up log so managers can pin it. */
  fingerprint: string;
  generated: boolean;
}

export function loadOrCreateHostKey(file: string, fingerprintOf: (blob: Buffer) => string): HostKey {
  let text: Buffer | undefined;
  try {
    text = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new GatewayError('GW_ERR_CONFIG', `northbound.hostKeyFile ${file} cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  let generated = false;
  if (text === undefined) {
    const pair = generateUsableEd25519('callhome-gateway northbound');
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // 'wx': never overwrite a key another process wrote meanwhile.
      writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG', `cannot write northbound.hostKeyFile ${file} (${(err as NodeJS.ErrnoException).code})`);
    }
    text = Buffer.from(pair.private);
    generated = true;
  }
  const parsed = ssh2.utils.parseKey(text);
  const key = parsed instanceof Error ? undefined : Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) {
    throw new GatewayError('GW_ERR_CONFIG', `northbound.hostKeyFile ${file} holds no usable private key`);
  }
  return { privateKey: text, fingerprint: fingerprintOf(key.getPublicSSH()), generated };
}

/**
 * ssh2's generateKeyPairSync('ed25519') drops a leading zero byte of the public key about
 * once in 200 keys, and ssh2 then refuses the key it made ("Malformed OpenSSH public key").
 * Such a key written to hostKeyFile would stop every later start, so generate until ssh2
 * parses both halves.
 */
export function generateUsableEd25519(comment: string): { private: string; public: string } {
  for (let i = 0; i < 20; i++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const pub = ssh2.utils.parseKey(pair.public);
    const priv = ssh2.utils.parseKey(pair.private);
    if (!(pub instanceof Error) && !(priv instanceof Error) && !Array.isArray(pub) && !Array.isArray(priv)) return pair;
  }
  throw new GatewayError('GW_ERR_CONFIG', 'could not generate a usable ed25519 host key');
}
