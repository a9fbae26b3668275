// A simulated call-home device: it dials the gateway over TCP and then acts as the SSH
// *server* on that outbound socket (RFC 8071 §4.1 S1/S2), presenting its own host key,
// accepting its password, and serving NETCONF on every `netconf` subsystem channel.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { AuthContext, Connection, ParsedKey, Session } from 'ssh2';
import { DeviceDatastore } from './datastore.js';
import { ed25519PrivateKeyFromSeed, fingerprintOf, parsePrivateKey, publicKeyLine } from './keys.js';
import { NetconfSession } from './netconf-server.js';
import { SshHost } from './ssh-host.js';

// ---- the device ----------------------------------------------------------------------------

export interface SimulatedDeviceOptions {
  /** Inventory id; also the hostname in its configuration. */
  id?: string;
  /** A private key to present (OpenSSH/PEM text or parsed); an ed25519 key is made otherwise. */
  hostKey?: string | Buffer | ParsedKey;
  /** 32-byte seed for the generated ed25519 key (the same seed gives the same key). */
  seed?: Buffer;
  username?: string;
  password?: string;
  /** Bytes of a full get / get-config reply message. */
  replySize?: number;
  /** Reconnect after every disconnect or failed attempt, with jittered exponential back-off. */
  persistent?: boolean;
  /** Seconds: first back-off and its ceiling. Defaults 1 and 30. */
  reconnectDelay?: { initial?: number; max?: number };
  /** Seconds from TCP connect until the gateway has logged in. Default 30. */
  handshakeTimeout?: number;
  /** Largest NETCONF request kept whole. */
  maxMessageSize?: number;
  /** Seconds a NETCONF session waits for the client's hello. Default 60. */
  helloTimeout?: number;
  /** Share one ssh2 Server among devices; each device makes its own otherwise. */
  sshHost?: SshHost;
}

export type DeviceState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'disconnected' | 'closed';

export interface DeviceEvents {
  /** The gateway logged in. */
  ready: [];
  /** An attempt ended before login (refused, unknown to the gateway, timeout, …). */
  'attempt-failed': [Error];
  /** An established connection ended. */
  disconnected: [Error | undefined];
  /** Persistent mode: the next attempt starts after `delayMs`. */
  reconnecting: [number];
}

const MAX_AUTH_TRIES = 6;

/** One TCP connection's worth of state. */
interface Attempt {
  socket: net.Socket;
  client: Connection | undefined;
  failure: Error | undefined;
  authenticated: boolean;
  authFailures: number;
  deadline: NodeJS.Timeout;
  sessions: Set<NetconfSession>;
}

export class SimulatedDevice extends EventEmitter<DeviceEvents> {
  readonly id: string;
  readonly username: string;
  readonly password: string;
  /** `SHA256:…`, exactly what `ssh-keygen -lf` prints for the public key. */
  readonly fingerprint: string;
  /** `ssh-ed25519 AAAA… <id>` */
  readonly publicKeyLine: string;
  replySize: number;
  /** Attempts started after the first. */
  reconnects = 0;
  failedAttempts = 0;
  private readonly key: ParsedKey;
  private readonly options: SimulatedDeviceOptions;
  private readonly sshHost: SshHost;
  private stateValue: DeviceState = 'idle';
  private target: { host: string; port: number } | undefined;
  private conn: Attempt | undefined;
  private backoffStep = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pending: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private store: DeviceDatastore | undefined;

  constructor(options: SimulatedDeviceOptions = {}) {
    super();
    this.options = options;
    this.id = options.id ?? 'sim-device';
    this.username = options.username ?? 'admin';
    this.password = options.password ?? 'admin';
    this.replySize = options.replySize ?? 0;
    this.key = parsePrivateKey(options.hostKey ?? ed25519PrivateKeyFromSeed(options.seed));
    this.fingerprint = fingerprintOf(this.key.getPublicSSH());
    this.publicKeyLine = publicKeyLine(this.key, this.id);
    this.sshHost = options.sshHost ?? new SshHost({ templateKey: this.key });
  }

  get state(): DeviceState {
    return this.stateValue;
  }

  get keyType(): string {
    return this.key.type;
  }

  /** Open NETCONF sessions on the current connection. */
  get sessions(): number {
    return this.conn?.sessions.size ?? 0;
  }

  /** The device's datastore, shared by all its sessions and kept across reconnects. */
  get datastore(): DeviceDatastore {
    return (this.store ??= new DeviceDatastore(this.id));
  }

  /**
   * Calls home. Resolves when the gateway has logged in. Without `persistent`, rejects when
   * that first attempt fails; with it, keeps trying and rejects only if closed first.
   */
  connect(host: string, port: number): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(new Error('device is closed'));
    if (this.target) return Promise.reject(new Error('connect() was already called'));
    this.target = { host, port };
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.attempt();
    });
  }

  /** Drops the current connection (a persistent device then reconnects). */
  disconnect(): void {
    const c = this.conn;
    if (!c) return;
    if (c.client) c.client.end();
    else c.socket.destroy();
  }

  /** Stops for good: no more reconnects, the connection is closed. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    clearTimeout(this.retryTimer);
    this.settle(new Error('device closed'));
    const c = this.conn;
    if (!c || c.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      c.socket.once('close', () => resolve());
      const t = setTimeout(() => c.socket.destroy(), 1000);
      t.unref();
      if (c.client) c.client.end();
      else c.socket.destroy();
    });
  }

  private attempt(): void {
    const { host, port } = this.target!;
    this.stateValue = 'connecting';
    const socket = net.connect({ host, port });
    const a: Attempt = {
      socket,
      client: undefined,
      failure: undefined,
      authenticated: false,
      authFailures: 0,
      // a deadline on every phase before the session is ready
      deadline: setTimeout(
        () => {
          a.failure ??= new Error('timed out waiting for the gateway to log in');
          socket.destroy();
        },
        (this.options.handshakeTimeout ?? 30) * 1000,
      ),
      sessions: new Set(),
    };
    this.conn = a;
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      a.failure ??= err;
    });
    socket.once('connect', () => {
      try {
        this.sshHost.inject(socket, this.key, (client) => this.attach(a, client));
      } catch (err) {
        a.failure ??= err as Error;
        socket.destroy();
      }
    });
    socket.once('close', () => this.onClosed(a));
  }

  private attach(a: Attempt, client: Connection): void {
    a.client = client;
    client.on('error', (err) => {
      a.failure ??= err;
    });
    client.on('authentication', (ctx) => this.authenticate(a, ctx));
    client.on('ready', () => {
      clearTimeout(a.deadline);
      // close() during the handshake: the login may still complete; hang up instead.
      if (this.stateValue === 'closed') {
        a.socket.destroy();
        return;
      }
      a.authenticated = true;
      this.backoffStep = 0;
      this.stateValue = 'connected';
      this.emit('ready');
      this.settle();
    });
    client.on('session', (accept) => this.serveSession(a, accept()));
  }

  private authenticate(a: Attempt, ctx: AuthContext): void {
    if (ctx.method === 'password' && sameText(ctx.username, this.username) && sameText(ctx.password, this.password)) {
      ctx.accept();
      return;
    }
    if (ctx.method !== 'none') {
      a.authFailures++;
      a.failure = new Error(`authentication failed for user "${ctx.username}"`);
    }
    ctx.reject(['password']);
    // like OpenSSH's MaxAuthTries
    if (a.authFailures >= MAX_AUTH_TRIES) a.client?.end();
  }

  private serveSession(a: Attempt, session: Session): void {
    // Only the netconf subsystem is served; shell, exec and pty requests have no listener,
    // so ssh2 refuses them.
    session.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'netconf') {
        reject?.();
        return;
      }
      const channel = accept();
      const nc = new NetconfSession(channel, {
        datastore: this.datastore,
        replySize: () => this.replySize,
        maxMessageSize: this.options.maxMessageSize,
        helloTimeout: this.options.helloTimeout,
        onClose: (s) => a.sessions.delete(s),
      });
      a.sessions.add(nc);
      // ssh2 emits `close` on the session at once, but on a paused channel only after its data
      // was read; a reply waiting for window space must hear of the close the first way.
      session.once('close', () => nc.kill('channel closed'));
    });
  }

  private onClosed(a: Attempt): void {
    clearTimeout(a.deadline);
    for (const s of [...a.sessions]) s.kill('connection closed');
    if (this.conn === a) this.conn = undefined;
    if (this.stateValue === 'closed') return;
    const err = a.failure ?? new Error(a.authenticated ? 'connection closed by the gateway' : 'connection closed before login');
    if (a.authenticated) {
      this.emit('disconnected', a.failure);
    } else {
      this.failedAttempts++;
      this.emit('attempt-failed', err);
    }
    if (this.options.persistent) {
      this.scheduleReconnect();
    } else {
      this.stateValue = 'disconnected';
      this.settle(err);
    }
  }

  /** Exponential back-off with equal jitter: a delay in [d/2, d), d doubling up to the ceiling. */
  private scheduleReconnect(): void {
    const initial = (this.options.reconnectDelay?.initial ?? 1) * 1000;
    const max = (this.options.reconnectDelay?.max ?? 30) * 1000;
    const d = Math.min(max, initial * 2 ** this.backoffStep);
    this.backoffStep = Math.min(this.backoffStep + 1, 30);
    const delay = Math.round(d / 2 + Math.random() * (d / 2));
    this.stateValue = 'waiting';
    this.emit('reconnecting', delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stateValue !== 'waiting') return;
      this.reconnects++;
      this.attempt();
    }, delay);
  }

  private settle(err?: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (err) p.reject(err);
    else p.resolve();
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
