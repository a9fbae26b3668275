// The northbound side: plain NETCONF over SSH (RFC 6242) for managers that only dial in.
// One shared port routes by `<user>@<device>` (split at the last '@'); a device with its
// own `port:` gets a listener where the plain user name is used. This side listens and
// authenticates; each client `netconf` subsystem is then a client session
// (northbound/client-session.ts) that the device serves.
import net, { type AddressInfo, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, AuthContext } from 'ssh2';
import { GatewayError, describeError } from '../errors.js';
import { remoteFields, type Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { DeviceDirectory } from '../device/directory.js';
import type { InFlightSessions } from '../lifecycle/drain.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Users } from './auth.js';
import type { Admission, AdmissionTicket } from '../limits/admission.js';
import type { SessionCaps } from '../limits/session-caps.js';
import { connectionSocket } from '../ssh/internals.js';
import { DEFAULT_SSH_IDENT, type SshPolicy } from '../ssh/policy.js';
import type { AuditLog } from '../audit/audit.js';
import { startNetconf, type ClientSessionServer, type Grant } from './client-session.js';
import type { ClientSessions } from './sessions.js';

export type Route = { kind: 'shared' } | { kind: 'device'; deviceId: string };

export interface NorthboundOptions {
  /** Seconds from TCP accept until the client has authenticated. */
  loginGraceTime: number;
  /** Seconds to wait for the device to open a channel for a client. */
  channelOpenTimeout: number;
  maxMessageBytes: number;
  maxHelloBytes: number;
  /** SSH keepalive toward clients (seconds, count), so a vanished manager frees its device channel. */
  keepalive?: { interval: number; countMax: number };
  /** Seconds a client session for an offline device waits for it to call home (0: fail at once). */
  waitForDevice?: number;
}

export interface NorthboundDeps {
  hostKey: Buffer;
  users: () => Users;
  inventory: () => Inventory;
  registry: DeviceRegistry;
  metrics: GatewayMetrics;
  logger: Logger;
  options: NorthboundOptions;
  // Hardening (all optional): admission at accept, algorithm policy, session caps, audit.
  admission?: Admission;
  sshPolicy?: SshPolicy;
  sessionCaps?: SessionCaps;
  audit?: AuditLog;
  /** Where running splices are registered for a graceful drain. */
  inFlight?: InFlightSessions;
  /** The live client sessions, for the operator API. */
  sessions?: ClientSessions;
  /** Where devices are found: the registry alone unless another replica may hold them (cluster mode). */
  directory?: DeviceDirectory;
}

interface Listener {
  route: Route;
  server: ssh2.Server;
  port: number;
  /** The TCP listener when admission control sits in front of ssh2. */
  tcp?: net.Server;
}

/** Splits a shared-port user name at its last '@': `alice@edge-1` → alice, edge-1. */
export function splitUserAtDevice(username: string): { user: string; deviceId?: string } {
  const at = username.lastIndexOf('@');
  if (at <= 0 || at === username.length - 1) return { user: username };
  return { user: username.slice(0, at), deviceId: username.slice(at + 1) };
}

export class NorthboundServer {
  private readonly listeners = new Set<Listener>();
  private readonly connections = new Set<Connection>();
  private closing = false;
  private readonly tickets = new WeakMap<Socket, AdmissionTicket>();
  /** Every admitted socket, so destroy() also drops those still silent before the SSH banner. */
  private readonly sockets = new Set<Socket>();
  private readonly grants = new Set<Grant>();
  /** Aborted on close/destroy: ends waits for devices. */
  private readonly stopping = new AbortController();

  /** What each client session sees of this server. */
  private readonly asServer: ClientSessionServer;

  constructor(private readonly deps: NorthboundDeps) {
    const closing = (): boolean => this.closing;
    this.asServer = {
      deps,
      grants: this.grants,
      stopping: this.stopping.signal,
      get closing() {
        return closing();
      },
    };
  }

  /** Starts one listener; resolves with the bound port (useful when `port` is 0). */
  listen(host: string, port: number, route: Route): Promise<number> {
    const server = new ssh2.Server(
      {
        hostKeys: [this.deps.hostKey],
        ident: this.deps.sshPolicy?.ident ?? DEFAULT_SSH_IDENT,
        ...(this.deps.sshPolicy ? { algorithms: this.deps.sshPolicy.algorithms } : {}),
        ...(this.deps.options.keepalive ? { keepaliveInterval: this.deps.options.keepalive.interval * 1000, keepaliveCountMax: this.deps.options.keepalive.countMax } : {}),
      },
      (conn: Connection, info: ssh2.ClientInfo) => this.onConnection(conn, info, route),
    );
    const admission = this.deps.admission;
    if (admission) return this.listenAdmitted(server, admission, host, port, route);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new GatewayError('GW_ERR_LISTEN', `cannot listen on ${host}:${port} for ${describeRoute(route)}: ${err.code ?? err.message}`));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (err: Error) => this.deps.logger.error({ err: describeError(err) }, 'northbound listener error'));
        const bound = (server.address() as AddressInfo).port;
        this.listeners.add({ route, server, port: bound });
        resolve(bound);
      });
    });
  }

  /** Accepts TCP itself, admits each socket (src/limits), then hands it to ssh2. */
  private listenAdmitted(server: ssh2.Server, admission: Admission, host: string, port: number, route: Route): Promise<number> {
    const tcp = net.createServer((socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      const ticket = admission.admit(socket);
      if (!ticket) return;
      this.tickets.set(socket, ticket);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      server.injectSocket(socket);
    });
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new GatewayError('GW_ERR_LISTEN', `cannot listen on ${host}:${port} for ${describeRoute(route)}: ${err.code ?? err.message}`));
      };
      tcp.once('error', onError);
      tcp.listen({ port, host, backlog: 1024 }, () => {
        tcp.off('error', onError);
        tcp.on('error', (err: Error) => this.deps.logger.error({ err: describeError(err) }, 'northbound listener error'));
        const bound = (tcp.address() as AddressInfo).port;
        this.listeners.add({ route, server, port: bound, tcp });
        resolve(bound);
      });
    });
  }

  /**
   * Ends what the current users file no longer allows: every session and every logged-in
   * connection whose user may no longer reach the device it named.
   */
  revoke(users: Users): number {
    let ended = 0;
    for (const grant of [...this.grants]) {
      // A user made read-only loses the sessions in which writes were allowed.
      const narrowed = grant.access === 'read-write' && users.accessOf(grant.user) === 'read-only';
      if (grant.deviceId !== undefined && users.mayReach(grant.user, grant.deviceId) && !narrowed) continue;
      if (grant.deviceId === undefined) continue; // no device named: every session it asks for is refused anyway
      this.grants.delete(grant);
      const what = narrowed ? 'made read-only' : 'withdrawn';
      grant.end(new GatewayError('GW_ERR_REMOVED', `access of user ${grant.user}${grant.deviceId ? ` to ${grant.deviceId}` : ''} ${what} by the users file`));
      ended++;
    }
    return ended;
  }

  /** Stops the listener serving `deviceId`'s own port, if there is one. */
  async unlistenDevice(deviceId: string): Promise<void> {
    for (const l of this.listeners) {
      if (l.route.kind === 'device' && l.route.deviceId === deviceId) {
        this.listeners.delete(l);
        await new Promise<void>((resolve) => (l.tcp ?? l.server).close(() => resolve()));
      }
    }
  }

  /** Client SSH connections open now (any phase). */
  get openConnections(): number {
    return this.connections.size;
  }

  devicePorts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.listeners) if (l.route.kind === 'device') out.set(l.route.deviceId, l.port);
    return out;
  }

  /** Stops accepting; existing sessions go on until `destroy()`. */
  async close(): Promise<void> {
    this.closing = true;
    this.stopping.abort();
    await Promise.all([...this.listeners].map((l) => new Promise<void>((resolve) => (l.tcp ?? l.server).close(() => resolve()))));
    this.listeners.clear();
  }

  destroy(): void {
    this.closing = true;
    this.stopping.abort();
    for (const l of this.listeners) (l.tcp ?? l.server).close();
    this.listeners.clear();
    const ending = new Set([...this.connections].map((conn) => connectionSocket(conn)));
    for (const conn of this.connections) conn.end();
    this.connections.clear();
    // Sockets ssh2 has not made a connection of yet (silent, or mid-banner) have no one to end them.
    for (const socket of this.sockets) if (!ending.has(socket)) socket.destroy();
  }

  private onConnection(conn: Connection, info: ssh2.ClientInfo, route: Route): void {
    // Small replies must not wait for the client's delayed ACK (Nagle): +40 ms per RPC otherwise.
    (conn as Connection & { setNoDelay(noDelay: boolean): unknown }).setNoDelay(true);
    if (this.closing) {
      // Ended at once, but its bytes may still fail to parse (e.g. "Bad packet length"):
      // an error with no listener would take the whole process down.
      conn.on('error', () => {});
      conn.end();
      return;
    }
    const { logger, options, metrics } = this.deps;
    const client = `${info.ip}:${info.port}`;
    const log = logger.child(remoteFields(info.ip, info.port));
    this.connections.add(conn);
    const socket = connectionSocket(conn);
    const ticket = socket && this.tickets.get(socket);
    conn.on('handshake', (negotiated) => {
      const refusal = this.deps.sshPolicy?.refusal(conn, negotiated);
      if (refusal) {
        log.warn({ reason: 'GW_ERR_HANDSHAKE_FAILED' }, `client refused: ${refusal}`);
        conn.end();
      }
    });
    let authenticated: { user: string; deviceId?: string } | undefined;
    let attempted = false;
    const grace = setTimeout(() => {
      log.warn({ reason: 'GW_ERR_TIMEOUT' }, `client did not authenticate within ${options.loginGraceTime}s`);
      conn.end();
    }, options.loginGraceTime * 1000);

    conn.on('error', (err: Error & { level?: string }) => {
      if (err.level === 'client-timeout') {
        // ssh2 only half-closes here; a frozen peer never completes that, so drop the socket.
        log.warn({ reason: 'GW_ERR_KEEPALIVE_TIMEOUT' }, 'client stopped answering keepalives: connection closed');
        connectionSocket(conn)?.destroy();
        return;
      }
      log.debug({ err: describeError(err) }, 'client connection error');
    });
    conn.on('close', () => {
      clearTimeout(grace);
      this.connections.delete(conn);
      if (!authenticated && attempted) metrics.clientSessionsTotal.inc({ result: 'auth_failed' });
      if (!authenticated) ticket?.failed();
    });
    conn.on('authentication', (ctx: AuthContext) => {
      const who = route.kind === 'shared' ? splitUserAtDevice(ctx.username) : { user: ctx.username, deviceId: route.deviceId };
      void this.authenticate(ctx, who.user).then(
        (ok) => {
          if (ok) {
            authenticated = who;
            ctx.accept();
          } else {
            ctx.reject(['publickey', 'password']);
          }
        },
        (err: unknown) => {
          log.error({ err: describeError(err) }, 'authentication error');
          ctx.reject(['publickey', 'password']);
        },
      );
      if (ctx.method === 'password' || (ctx.method === 'publickey' && ctx.signature)) attempted = true;
    });
    conn.on('ready', () => {
      clearTimeout(grace);
      ticket?.authenticated();
      const who = authenticated!;
      const grant: Grant = { ...who, access: this.deps.users().accessOf(who.user), end: () => conn.end() };
      this.grants.add(grant);
      conn.once('close', () => this.grants.delete(grant));
      log.info({ user: who.user, device: who.deviceId }, 'client authenticated');
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        let used = false;
        session.on('subsystem', (accept, reject, sub) => {
          if (sub.name !== 'netconf' || used) {
            reject();
            return;
          }
          used = true;
          void startNetconf(this.asServer, accept, who, log, { client, onOverrun: () => conn.end() });
        });
        // Shell, exec, pty, sftp and forwarding requests have no listener here, and ssh2
        // rejects any request nobody listens for: this endpoint speaks NETCONF only.
      });
    });
  }

  private async authenticate(ctx: AuthContext, user: string): Promise<boolean> {
    const users = this.deps.users();
    if (ctx.method === 'password') return users.checkPassword(user, ctx.password);
    if (ctx.method === 'publickey') {
      const key = users.findKey(user, ctx.key.data);
      if (!key || key.type !== ctx.key.algo.replace(/^rsa-sha2-(256|512)$/, 'ssh-rsa')) return false;
      // ssh-rsa signatures are SHA-1: refused unless the policy widens for old clients.
      if (this.deps.sshPolicy && !this.deps.sshPolicy.legacy && ctx.key.algo === 'ssh-rsa' && ctx.signature) return false;
      // Without a signature the client only asks whether this key would do (RFC 4252 §7).
      if (!ctx.signature) return true;
      return key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true;
    }
    return false;
  }
}

function describeRoute(route: Route): string {
  return route.kind === 'shared' ? 'the shared northbound port' : `device ${route.deviceId}`;
}
