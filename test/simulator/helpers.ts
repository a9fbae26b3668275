// Test-side peers for the simulator: a tiny "gateway" (a net.Server whose accepted sockets run
// an ssh2 Client, as the real gateway does) and a NETCONF client with its own framing parser,
// written independently of src/simulator/framing.ts so the two cannot share a mistake.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
export { withTimeout } from '../helpers/wait.js';

export const BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
export const BASE_10 = 'urn:ietf:params:netconf:base:1.0';
export const BASE_11 = 'urn:ietf:params:netconf:base:1.1';

export interface GatewayConnection {
  socket: net.Socket;
  client: InstanceType<typeof ssh2.Client>;
  /** The raw host key blob the device presented. */
  hostKey: Buffer;
  fingerprint: string;
  /** Resolves on login, rejects on failure. */
  ready: Promise<void>;
  closed: Promise<void>;
}

export interface TestGatewayOptions {
  username?: string;
  password?: string;
  /** Credentials per presented fingerprint (overrides username/password). */
  credentialsFor?: (fingerprint: string) => { username: string; password: string } | undefined;
  keepaliveInterval?: number;
}

export class TestGateway {
  readonly connections: GatewayConnection[] = [];
  /** While set, accepted sockets are closed at once (like a gateway that is not ready). */
  refuse = false;
  refused = 0;
  private readonly server: net.Server;
  private readonly options: TestGatewayOptions;
  private readonly waiters: Array<(c: GatewayConnection) => void> = [];

  private constructor(options: TestGatewayOptions) {
    this.options = options;
    this.server = net.createServer((socket) => this.accept(socket));
  }

  static async start(options: TestGatewayOptions = {}): Promise<TestGateway> {
    return TestGateway.startOn(0, options);
  }

  static async startOn(port: number, options: TestGatewayOptions = {}): Promise<TestGateway> {
    const gw = new TestGateway(options);
    gw.server.listen(port, '127.0.0.1');
    await once(gw.server, 'listening');
    return gw;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private accept(socket: net.Socket): void {
    if (this.refuse) {
      this.refused++;
      socket.destroy();
      return;
    }
    const client = new ssh2.Client();
    let hostKey: Buffer = Buffer.alloc(0);
    let fingerprint = '';
    const conn = { socket, client } as GatewayConnection;
    conn.ready = new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before ready')));
    });
    conn.ready.catch(() => undefined);
    conn.closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => undefined);
    const creds = { username: this.options.username ?? 'admin', password: this.options.password ?? 'admin' };
    client.connect({
      sock: socket,
      username: creds.username,
      // the password is chosen once the host key is known, as the gateway does
      authHandler: (_methods, _partial, cb) => {
        const c = this.options.credentialsFor?.(fingerprint) ?? creds;
        if (_methods === null) cb({ type: 'password', username: c.username, password: c.password });
        else cb(false as unknown as ssh2.AuthenticationType);
      },
      hostVerifier: (key: Buffer) => {
        hostKey = key;
        fingerprint = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
        conn.hostKey = hostKey;
        conn.fingerprint = fingerprint;
        return true;
      },
      keepaliveInterval: this.options.keepaliveInterval ?? 0,
      readyTimeout: 10_000,
    });
    this.connections.push(conn);
    const w = this.waiters.shift();
    if (w) w(conn);
  }

  /** The next accepted connection (or one already accepted and not yet taken). */
  nextConnection(timeoutMs = 10_000): Promise<GatewayConnection> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no connection')), timeoutMs);
      this.waiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.client.end();
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export function openNetconf(conn: GatewayConnection): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    conn.client.subsys('netconf', (err, ch) => (err ? reject(err) : resolve(ch)));
  });
}

export interface Received {
  body: Buffer;
  /** chunk sizes in chunked framing (empty for end-of-message framing) */
  chunks: number[];
}

/** A NETCONF client over a channel, with its own RFC 6242 parser. */
export class NetconfClient {
  framing: 'eom' | 'chunked' = 'eom';
  readonly channel: Duplex;
  private pending: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private chunks: number[] = [];
  private remaining = 0;
  private readonly ready: Received[] = [];
  private readonly waiters: Array<{ resolve: (r: Received) => void; reject: (e: Error) => void }> = [];
  private ended = false;
  private nextId = 100;

  constructor(channel: Duplex) {
    this.channel = channel;
    channel.on('data', (d: Buffer) => this.onData(d));
    const onGone = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error('channel closed'));
    };
    channel.on('close', onGone);
    channel.on('end', onGone);
  }

  get isClosed(): boolean {
    return this.ended;
  }

  private onData(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    for (;;) {
      if (this.framing === 'eom') {
        // only the last 5 bytes stay in `pending`, so a big message is not copied over and over
        const i = this.pending.indexOf(']]>]]>');
        if (i < 0) {
          const keep = Math.min(5, this.pending.length);
          this.parts.push(this.pending.subarray(0, this.pending.length - keep));
          this.pending = this.pending.subarray(this.pending.length - keep);
          return;
        }
        this.parts.push(this.pending.subarray(0, i));
        this.deliver({ body: Buffer.concat(this.parts), chunks: [] });
        this.parts = [];
        this.pending = this.pending.subarray(i + 6);
        continue;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, this.pending.length);
        if (n === 0) return;
        this.parts.push(this.pending.subarray(0, n));
        this.pending = this.pending.subarray(n);
        this.remaining -= n;
        continue;
      }
      const nl = this.pending.indexOf(0x0a, 1);
      if (nl < 0) return;
      const header = this.pending.subarray(0, nl + 1).toString('latin1');
      if (header === '\n##\n') {
        this.deliver({ body: Buffer.concat(this.parts), chunks: this.chunks });
        this.parts = [];
        this.chunks = [];
      } else {
        const m = /^\n#([1-9][0-9]*)\n$/.exec(header);
        if (!m) throw new Error(`bad chunk header ${JSON.stringify(header)}`);
        this.remaining = Number(m[1]);
        this.chunks.push(this.remaining);
      }
      this.pending = this.pending.subarray(nl + 1);
    }
  }

  private deliver(r: Received): void {
    const w = this.waiters.shift();
    if (w) w.resolve(r);
    else this.ready.push(r);
  }

  read(timeoutMs = 20_000): Promise<Received> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.ended) return Promise.reject(new Error('channel closed'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message')), timeoutMs);
      this.waiters.push({
        resolve: (x) => {
          clearTimeout(t);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  send(xml: string): void {
    const b = Buffer.from(xml);
    if (this.framing === 'eom') this.channel.write(Buffer.concat([b, Buffer.from(']]>]]>')]));
    else this.channel.write(Buffer.concat([Buffer.from(`\n#${b.length}\n`), b, Buffer.from('\n##\n')]));
  }

  /** Reads the server hello, sends ours; returns the server hello text. */
  async hello(capabilities: string[] = [BASE_10, BASE_11]): Promise<string> {
    const server = (await this.read()).body.toString();
    this.send(
      `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${BASE_NS}"><capabilities>` +
        capabilities.map((c) => `<capability>${c}</capability>`).join('') +
        '</capabilities></hello>',
    );
    if (capabilities.includes(BASE_11) && server.includes(BASE_11)) this.framing = 'chunked';
    return server;
  }

  /** Sends `<rpc message-id=N>inner</rpc>` and returns the reply text. */
  async rpc(inner: string, attrs = ''): Promise<string> {
    const id = String(this.nextId++);
    this.send(`<rpc message-id="${id}" xmlns="${BASE_NS}"${attrs}>${inner}</rpc>`);
    const reply = (await this.read()).body.toString();
    if (!reply.includes(`message-id="${id}"`)) throw new Error(`reply without message-id ${id}: ${reply.slice(0, 200)}`);
    return reply;
  }
}

export function errorTag(reply: string): string | undefined {
  return /<error-tag>([^<]*)<\/error-tag>/.exec(reply)?.[1];
}

/**
 * Two connected in-memory streams; writes on one are read on the other. Writes on the first
 * complete after `delayMs` (a slow reader), so its writable buffer shows any missing backpressure.
 */
export function duplexPair(delayMs = -1): [Duplex, Duplex] {
  const eof = new WeakSet<Duplex>();
  const deliver = (to: Duplex, chunk: Buffer | null): void => {
    if (eof.has(to) || to.destroyed) return;
    if (chunk === null) eof.add(to);
    to.push(chunk);
  };
  const make = (peer: () => Duplex, delay: number): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        deliver(peer(), chunk);
        if (delay < 0) cb();
        else setTimeout(cb, delay);
      },
      final(cb) {
        deliver(peer(), null);
        cb();
      },
      destroy(err, cb) {
        deliver(peer(), null);
        cb(err);
      },
    });
  const a: Duplex = make(() => b, delayMs);
  const b: Duplex = make(() => a, -1);
  return [a, b];
}
