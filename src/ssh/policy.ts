// The SSH algorithm policy of both sides (call-home client and northbound server).
// Default: no SHA-1 (ssh-rsa signatures, hmac-sha1, *-sha1 key exchange) and no CBC.
// Strict key exchange (kex-strict-*-v00@openssh.com, the Terrapin fix, CVE-2023-48795)
// is offered by ssh2 >= 1.15 on both sides; a peer that does not do it is refused when it
// negotiated what Terrapin attacks (chacha20-poly1305, or an encrypt-then-MAC MAC), or
// always with `ssh.requireStrictKex`. `ssh.legacyAlgorithms` widens the lists for old devices.
import type { Algorithms } from 'ssh2';
import { strictKexNegotiated } from './internals.js';

const SHA1_KEX = ['diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group1-sha1'];
const CBC = ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'];

/** What the gateway announces as its software version when ssh.identification is not given. */
export const DEFAULT_SSH_IDENT = 'callhome_gateway';

export interface SshPolicy {
  algorithms: Algorithms;
  /** The software version both sides announce (`SSH-2.0-<ident>`): ssh.identification. */
  ident: string;
  /** Why a finished key exchange must be refused, or undefined. */
  refusal(peer: unknown, negotiated: NegotiatedAlgorithms): string | undefined;
  legacy: boolean;
}

export interface NegotiatedAlgorithms {
  kex: string;
  serverHostKey: string;
  cs: { cipher: string; mac: string };
  sc: { cipher: string; mac: string };
}

export function sshPolicy(options: { legacyAlgorithms: boolean; requireStrictKex: boolean; identification?: string }): SshPolicy {
  const algorithms: Algorithms = options.legacyAlgorithms
    ? ({ kex: { append: SHA1_KEX }, cipher: { append: CBC } } as unknown as Algorithms)
    : ({
        serverHostKey: { remove: ['ssh-rsa'] },
        hmac: { remove: ['hmac-sha1-etm@openssh.com', 'hmac-sha1'] },
      } as unknown as Algorithms);
  return {
    algorithms,
    // Not ssh2's default (`ssh2js<version>`), which tells a scanner the library and version.
    ident: options.identification ?? DEFAULT_SSH_IDENT,
    legacy: options.legacyAlgorithms,
    refusal(peer, n) {
      if (strictKexNegotiated(peer)) return undefined;
      if (options.requireStrictKex) return 'peer does not support strict key exchange (ssh.requireStrictKex)';
      if (terrapinExposed(n)) {
        return `peer negotiated ${n.cs.cipher}/${n.cs.mac || 'aead'} without strict key exchange (Terrapin, CVE-2023-48795)`;
      }
      return undefined;
    },
  };
}

function terrapinExposed(n: NegotiatedAlgorithms): boolean {
  const exposed = (d: { cipher: string; mac: string }) => d.cipher === 'chacha20-poly1305@openssh.com' || (!/gcm/.test(d.cipher) && /-etm@openssh\.com$/.test(d.mac));
  return exposed(n.cs) || exposed(n.sc);
}
