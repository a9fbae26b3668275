// A scriptable call-home device built from ssh2's Server over an outbound socket
// (RFC 8071 §4.1 S1/S2: the device connects, then is the SSH server). Used for the failure
// paths a real netconfd cannot be told to take: no hello, a non-NETCONF hello, garbage.
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ServerChannel } from 'ssh2';
import { fingerprintOfKeyBlob } from '../../src/inventory/identity.js';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';

export const NETCONF_HELLO =
  '<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>' +
  '<capability>urn:ietf:params:netconf:base:1.0</capability><capability>urn:ietf:params:netconf:base:1.1</capability>' +
  '</capabilities><session-id>7</session-id></hello>]]>]]>';

export interface ScriptedDeviceOptions {
  username?: string;
  password?: string;
  /** What the device does on each netconf channel; default: send a hello, then echo nothing. */
  onNetconf?: (channel: ServerChannel) => void;
  /** Log the gateway in, then never answer its session channel open (neither accept nor reject). */
  ignoreChannelOpen?: boolean;
}

export class ScriptedDevice {
  readonly hostKey = generateUsableEd25519('scripted device');
  readonly fingerprint: string;
  readonly username: string;
  readonly password: string;
  authAttempts = 0;
  /** Every password the gateway tried, in order (a hostile device would keep them). */
  passwordsTried: string[] = [];
  /** The SSH identification line of each gateway connection (`SSH-2.0-...`). */
  gatewayIdents: string[] = [];
  channels = 0;
  private server: ssh2.Server;
  private sockets = new Set<net.Socket>();

  constructor(private readonly options: ScriptedDeviceOptions = {}) {
    this.username = options.username ?? 'admin';
    this.password = options.password ?? 'device-secret';
    const parsed = ssh2.utils.parseKey(this.hostKey.public) as ssh2.ParsedKey;
    this.fingerprint = fingerprintOfKeyBlob(parsed.getPublicSSH());
    this.server = new ssh2.Server({ hostKeys: [this.hostKey.private] }, (conn, info) => {
      this.gatewayIdents.push(info.header.identRaw);
      conn.on('error', () => {});
      conn.on('authentication', (ctx) => {
        this.authAttempts++;
        if (ctx.method === 'password') this.passwordsTried.push(ctx.password);
        if (ctx.method === 'password' && ctx.username === this.username && ctx.password === this.password) ctx.accept();
        else ctx.reject(['password']);
      });
      conn.on('ready', () => {
        conn.on('session', (accept) => {
          if (this.options.ignoreChannelOpen) return;
          const session = accept();
          session.on('subsystem', (acceptSub, _reject, info) => {
            if (info.name !== 'netconf') return;
            const channel = acceptSub();
            this.channels++;
            (this.options.onNetconf ?? ((ch) => ch.write(NETCONF_HELLO)))(channel);
          });
        });
      });
    });
  }

  /** Opens one call-home connection to the gateway; resolves when the TCP connection is up. */
  callHome(port: number, host = '127.0.0.1'): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        this.server.injectSocket(socket);
        resolve(socket);
      });
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.once('error', reject);
    });
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

export function inventoryFor(devices: Array<{ id: string; device: ScriptedDevice; port?: number; password?: string; sessions?: string }>): string {
  return (
    'devices:\n' +
    devices
      .map(
        ({ id, device, port, password, sessions }) =>
          `  - id: ${id}\n    ssh: { hostKeys: ["${device.fingerprint}"] }\n    credentials: { username: ${device.username}, password: "${password ?? device.password}" }\n` +
          (port !== undefined ? `    port: ${port}\n` : '') +
          (sessions !== undefined ? `    sessions: ${sessions}\n` : ''),
      )
      .join('')
  );
}
