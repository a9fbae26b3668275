// One ssh2 Server for many simulated devices, each presenting its own host key on the
// sockets it dials out (RFC 8071: the device is the SSH server on its outbound connection).
import type net from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, ParsedKey } from 'ssh2';
import { connectionSocket, setConnectionHostKey } from '../ssh/internals.js';
import { ed25519PrivateKeyFromSeed, parsePrivateKey } from './keys.js';

export interface SshHostOptions {
  /** Seconds between the device's keepalive probes to the gateway; 0 turns them off. Default 15. */
  keepaliveInterval?: number;
  /** Unanswered probes before the device drops the connection. Default 3. */
  keepaliveCountMax?: number;
  /** Software version in the SSH identification string. */
  ident?: string;
  /** Only its type matters: it decides the host key algorithm offered. ed25519 by default. */
  templateKey?: ParsedKey;
}

export type Attach = (client: Connection) => void;

/**
 * An ssh2 `Server` shared by many devices. ssh2 fixes host keys per Server, and a Server per
 * device costs memory at 10,000 devices, so each connection gets its device's key instead:
 * ssh2 announces a connection (the `connection` event, at the peer's identification line)
 * before key exchange needs the host key, and the key is looked up per connection then.
 */
export class SshHost {
  readonly keyType: string;
  private readonly server: InstanceType<typeof ssh2.Server>;
  private readonly waiting = new WeakMap<net.Socket, Attach>();

  constructor(options: SshHostOptions = {}) {
    const template = options.templateKey ?? parsePrivateKey(ed25519PrivateKeyFromSeed());
    this.keyType = template.type;
    const interval = options.keepaliveInterval ?? 15;
    this.server = new ssh2.Server({
      hostKeys: [{ key: template }],
      ident: options.ident ?? 'callhome-gateway-simulator',
      // ssh2 has no "off": a probe every 24 days is off in practice
      keepaliveInterval: interval > 0 ? interval * 1000 : 2 ** 31 - 1,
      keepaliveCountMax: options.keepaliveCountMax ?? 3,
    });
    this.server.on('connection', (client: Connection) => {
      const sock = connectionSocket(client);
      const attach = sock ? this.waiting.get(sock) : undefined;
      if (!sock || !attach) {
        client.end();
        return;
      }
      this.waiting.delete(sock);
      attach(client);
    });
  }

  /** Runs the SSH server side on an outbound socket with `key` as the host key. */
  inject(socket: net.Socket, key: ParsedKey, attach: Attach): void {
    if (key.type !== this.keyType) throw new Error(`this SSH host serves ${this.keyType} keys, not ${key.type}`);
    this.waiting.set(socket, (client) => {
      if (!setConnectionHostKey(client, key)) {
        // never present the template key instead of the device's own
        client.end();
        socket.destroy(new Error('ssh2 internals changed: cannot set a per-connection host key'));
        return;
      }
      attach(client);
    });
    this.server.injectSocket(socket);
  }
}
