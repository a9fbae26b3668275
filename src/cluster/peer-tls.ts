// Mutual TLS between replicas: both ends present a peer certificate of the gateway's own CA
// (`callhome-gateway certs peer`), and each accepts only a peer certificate, never a device's
// or the gateway's call-home client certificate, though the same CA issued those too.
import { readFileSync } from 'node:fs';
import type { PeerCertificate, SecureContextOptions, TLSSocket } from 'node:tls';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { PEER_UNIT } from '../tls/certs.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface PeerCredentials {
  ca: string;
  cert: string;
  key: string;
}

/** Reads cluster.peer.caFile / certFile / keyFile; a missing file stops start-up with its key named. */
export function loadPeerCredentials(config: Pick<Config, 'cluster'>): PeerCredentials {
  const { caFile, certFile, keyFile } = config.cluster.peer;
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `cluster.peer.${key} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): issue one with \`callhome-gateway certs peer\``,
      );
    }
  };
  return { ca: read(caFile, 'caFile'), cert: read(certFile, 'certFile'), key: read(keyFile, 'keyFile') };
}

/** Why `cert` is not a replica's peer certificate, or undefined when it is one. */
export function notAPeer(cert: PeerCertificate | undefined): string | undefined {
  if (!cert || Object.keys(cert).length === 0) return 'no certificate';
  const units = ([] as string[]).concat(cert.subject?.OU ?? []);
  const usages = (cert as PeerCertificate & { ext_key_usage?: string[] }).ext_key_usage ?? [];
  if (!units.includes(PEER_UNIT)) return `certificate ${cert.subject?.CN ?? '?'} is not a peer certificate (subject OU)`;
  if (!usages.includes(SERVER_AUTH) || !usages.includes(CLIENT_AUTH)) return `certificate ${cert.subject?.CN ?? '?'} lacks serverAuth+clientAuth`;
  return undefined;
}

/** TLS 1.3 only, the gateway's CA only. */
function context(creds: PeerCredentials): SecureContextOptions {
  return { ca: creds.ca, cert: creds.cert, key: creds.key, minVersion: 'TLSv1.3' };
}

export function serverOptions(creds: PeerCredentials, handshakeSeconds: number) {
  return { ...context(creds), requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeSeconds * 1000 };
}

export function clientOptions(creds: PeerCredentials) {
  return {
    ...context(creds),
    rejectUnauthorized: true,
    // Replicas are reached by the address Redis recorded (a pod IP), not by a name in the
    // certificate: what matters is that the other end holds a peer certificate of our CA.
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const why = notAPeer(cert);
      return why ? new Error(why) : undefined;
    },
  };
}

/** The authorised peer's refusal reason, or undefined: checked after the handshake on the accepting side. */
export function peerRefusal(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return `client certificate refused: ${String(socket.authorizationError ?? 'none presented')}`;
  return notAPeer(socket.getPeerCertificate());
}
