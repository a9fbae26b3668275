// The northbound side: plain NETCONF over SSH (RFC 6242) for managers that only dial in.
// One shared port routes by `<user>@<device>` (split at the last '@'); a device with its
// own `port:` gets a listener where the plain user name is used. Each client `netconf`
// subsystem becomes a new `netconf` channel on the device's connection, spliced 1:1.
import net, { type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel, AuthContext } from 'ssh2';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import { remoteFields, type Logger } from '../log.js';
import { GatewayMetrics, type ClientSessionResult } from '../metrics.js';
import { NetconfMeter } from '../netconf/meter.js';
import { splice } from '../splice/splice.js';
import { serveHeldSession } from './held.js';
import type { HeldSession } from '../device/held-session.js';
import type { DeviceRegistry } from '../device/registry.js';
import { waitForDevice } from '../device/arrival.js';
import type { InFlightSessions } from '../lifecycle/drain.js';
import type { Inventory } from '../device/inventory.js';
import type { UserAccess, Users } from './auth.js';
import type { Admission, AdmissionTicket } from '../limits/admission.js';
import type { SessionCaps } from '../limits/session-caps.js';
import { DEFAULT_SSH_IDENT, type SshPolicy } from '../ssh/policy.js';
import type { AuditLog } from '../audit/audit.js';
import { guardChannelWindow } from '../splice/window-guard.js';
import { filterStages } from '../splice/filter-stages.js';
import { RpcFilter, readOnlyAllows } from '../netconf/rpc-filter.js';
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
}

/** One authenticated client connection or one spliced session, for revocation on reload. */
interface Grant {
  user: string;
  deviceId?: string;
  /** The access the user had when the grant was made. */
  access?: UserAccess;
  end(reason: GatewayError): void;
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

  constructor(private readonly deps: NorthboundDeps) {}

  /** Starts one listener; resolves with the bound port (useful when `port` is 0). */
  listen(host: string, port: number, route: Route): Promise<number> {
    const server = new ssh2.Server(
      {
        hostKeys: [this.deps.hostKey],
        ident: this.deps.sshPolicy?.ident ?? DEFAULT_SSH_IDENT,
        ...(this.deps.sshPolicy ? { algorithms: this.deps.sshPolicy.algorithms } : {}),
        ...(this.deps.options.keepalive
          ? { keepaliveInterval: this.deps.options.keepalive.interval * 1000, keepaliveCountMax: this.deps.options.keepalive.countMax }
          : {}),
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
    const ending = new Set([...this.connections].map((conn) => (conn as unknown as { _sock: Socket })._sock));
    for (const conn of this.connections) conn.end();
    this.connections.clear();
    // Sockets ssh2 has not made a connection of yet (silent, or mid-banner) have no one to end them.
    for (const socket of this.sockets) if (!ending.has(socket)) socket.destroy();
  }

  private onConnection(conn: Connection, info: ssh2.ClientInfo, route: Route): void {
    // Small replies must not wait for the client's delayed ACK (Nagle): +40 ms per RPC otherwise.
    (conn as Connection & { setNoDelay(noDelay: boolean): unknown }).setNoDelay(true);
    if (this.closing) {
      conn.end();
      return;
    }
    const { logger, options, metrics } = this.deps;
    const client = `${info.ip}:${info.port}`;
    const log = logger.child(remoteFields(info.ip, info.port));
    this.connections.add(conn);
    const ticket = this.tickets.get((conn as unknown as { _sock: Socket })._sock);
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
        (conn as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
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
          void this.startNetconf(accept, who, log, { client, onOverrun: () => conn.end() });
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

  private async startNetconf(
    accept: () => ServerChannel | undefined,
    who: { user: string; deviceId?: string },
    log: Logger,
    conn: { client: string; onOverrun: () => void } = { client: 'unknown', onOverrun: () => {} },
  ): Promise<void> {
    const { metrics, registry, users, options, audit, sessionCaps } = this.deps;
    // Accept at once: a client may send its <hello> (and even EOF) right behind the
    // subsystem request, and ssh2 drops both if the request is still unanswered.
    const accepted = accept();
    if (!accepted) {
      log.debug({ user: who.user, device: who.deviceId }, 'client closed its session before the subsystem was accepted');
      return;
    }
    const channel = guardChannelWindow(accepted, (why) => {
      log.warn({ user: who.user, reason: why.code }, `client connection dropped: ${why.message}`);
      conn.onOverrun();
    });
    const refuse = (result: ClientSessionResult, reason: string) => {
      metrics.clientSessionsTotal.inc({ result });
      log.warn({ user: who.user, device: who.deviceId, result }, `client session refused: ${reason}`);
      // A one-line reason on the channel's stderr: OpenSSH prints it; ncclient sees the close.
      channel.stderr.write(`callhome-gateway: ${reason}\n`);
      channel.exit(1);
      channel.end();
    };
    if (!who.deviceId) {
      refuse('denied', 'no device named: log in as <user>@<device> on this port');
      return;
    }
    const deviceId = who.deviceId;
    // One answer for "no such device" and "not yours", so ids are not revealed to strangers.
    if (!users().mayReach(who.user, deviceId) || !registryKnows(this.deps, deviceId)) {
      refuse('denied', `device ${deviceId} does not exist or user ${who.user} may not reach it`);
      return;
    }
    if (this.closing) {
      refuse('device_unavailable', 'the gateway is shutting down');
      return;
    }
    let device = registry.get(deviceId);
    const wait = options.waitForDevice ?? 0;
    if (!device && wait > 0 && !this.closing) {
      // Hold the session (its <hello> waits in the channel) until the device calls home.
      log.info({ user: who.user, device: deviceId, waitForDevice: wait }, 'client waits for the device to call home');
      const gone = new AbortController();
      const onClose = () => gone.abort();
      channel.once('close', onClose);
      device = await waitForDevice(registry, deviceId, wait, AbortSignal.any([gone.signal, this.stopping.signal]));
      channel.off('close', onClose);
      if (gone.signal.aborted) {
        metrics.clientSessionsTotal.inc({ result: 'device_unavailable' });
        log.info({ user: who.user, device: deviceId }, 'client left while waiting for the device');
        return;
      }
    }
    if (!device) {
      refuse(
        'device_unavailable',
        this.closing ? 'the gateway is shutting down' : wait > 0 ? `device ${deviceId} did not call home within ${wait}s` : `device ${deviceId} is not connected`,
      );
      return;
    }
    const access = users().accessOf(who.user);
    const sessionId = audit?.nextSessionId() ?? this.deps.sessions?.nextId() ?? '';
    // One NETCONF session per device connection (TLS, or an SSH device in the single mode): lend it rather than open a channel.
    const lend = (held: HeldSession) => {
      const client = { id: sessionId, user: who.user, client: conn.client, access, limits: options, sessions: this.deps.sessions, audit };
      return serveHeldSession(held, deviceId, channel, { metrics, log: log.child({ user: who.user, device: deviceId, session: sessionId || undefined }), refuse, client });
    };
    if (device.held) {
      await lend(device.held);
      return;
    }
    const capped = sessionCaps?.acquire(who.user, deviceId);
    if (typeof capped === 'string') {
      refuse('rejected_limit', capped);
      return;
    }
    const releaseCap = capped ?? (() => {});
    let deviceChannel: ssh2.ClientChannel;
    let gaveUp = false;
    const opening = device.openNetconfChannel();
    // A channel that opens after we gave up must not be left open on the device.
    opening.then(
      (late) => gaveUp && late.close(),
      () => {},
    );
    try {
      deviceChannel = await withTimeout(opening, options.channelOpenTimeout, `device ${deviceId} did not open a channel within ${options.channelOpenTimeout}s`);
    } catch (err) {
      gaveUp = true;
      releaseCap();
      // A device that turns out to allow one session: lend it its held first session instead.
      const held = isGatewayError(err, 'GW_ERR_CHANNEL_REFUSED') ? device.fallBackToSingle?.(describeError(err)) : undefined;
      if (held) await lend(held);
      else refuse('device_unavailable', describeError(err));
      return;
    }
    metrics.clientSessionsTotal.inc({ result: 'ok' });
    metrics.clientSessionsActive.inc();
    const release = device.trackSession();
    const auditSession = { session: sessionId, user: who.user, client: conn.client, device: deviceId } as {
      session: string; user: string; client: string; device: string; deviceSessionId?: string;
    };
    const startedAt = performance.now();
    const splog = log.child({ user: who.user, device: deviceId, session: auditSession.session || undefined });
    splog.info('client session started');
    audit?.write({ event: 'session-start', ...auditSession });
    // Revocation by a users-file reload ends this session with its own reason.
    const revoked = new AbortController();
    const grant: Grant = { user: who.user, deviceId, access, end: (why) => revoked.abort(why) };
    this.grants.add(grant);
    const stats = { to_device: 0, to_client: 0, messagesToDevice: 0 };
    // Read-only users: refused RPCs are answered by the gateway and never reach the device.
    const filter = access === 'read-only' ? new RpcFilter({ allows: readOnlyAllows, who: `user ${who.user} is read-only and`, maxMessageBytes: options.maxMessageBytes, maxHelloBytes: options.maxHelloBytes }) : undefined;
    if (filter) filter.onDenied = (d) => splog.info({ operation: d.operation, messageId: d.messageId }, 'RPC refused: the user is read-only');
    const unlist = this.deps.sessions?.add(sessionId, {
      user: who.user,
      device: deviceId,
      remoteAddress: conn.client,
      access,
      kind: 'channel',
      stats: () => ({ bytesToDevice: stats.to_device, bytesToClient: stats.to_client, rpcs: Math.max(0, stats.messagesToDevice - 1), denied: filter?.denied ?? 0 }),
      end: (why) => revoked.abort(why),
    });
    const meter = new NetconfMeter(
      {
        message: (direction) => {
          metrics.netconfMessagesTotal.inc({ direction });
          if (direction === 'to_device') stats.messagesToDevice++; // the first is the hello
        },
        bytes: (direction, n) => {
          metrics.netconfBytesTotal.inc({ direction }, n);
          stats[direction] += n;
        },
        rpc: (operation, id, seconds, rpcResult) => {
          metrics.rpcDuration.observe({ operation: GatewayMetrics.operationLabel(operation) }, seconds);
          audit?.write({ event: 'rpc', ...auditSession, operation, messageId: id ?? null, result: rpcResult, durationMs: Math.round(seconds * 1e6) / 1e3 });
        },
        hello: (direction, _caps, sessionId) => {
          if (direction === 'to_client' && sessionId) auditSession.deviceSessionId = sessionId;
        },
      },
      { maxMessageBytes: options.maxMessageBytes, maxHelloBytes: options.maxHelloBytes },
    );
    // Mirror the device's exit status: OpenSSH's ssh exits 255 on a channel closed without one.
    let exitStatus: number | undefined;
    deviceChannel.on('exit', (code: number | null) => (exitStatus = code ?? undefined));
    // The device's exit-status may arrive a moment after its EOF; ending the client's channel
    // sends EOF and CLOSE at once, and a status after that is lost (OpenSSH then exits 255).
    const deviceSettled = () => waitForExit(deviceChannel, EXIT_STATUS_WAIT_MS);
    channel.prependOnceListener('prefinish', () => sendExitStatus(channel, exitStatus));
    let forget: (() => void) | undefined;
    const result = await splice(channel, deviceChannel, {
      observer: meter,
      signal: AbortSignal.any([device.signal, revoked.signal]),
      onStart: (handle) => (forget = this.deps.inFlight?.add(meter, handle)),
      onError: (reason) => {
        if (channel.stderr.writable) channel.stderr.write(`callhome-gateway: ${reason.message}\n`);
      },
      ...(filter ? { filter: filterStages(filter) } : {}),
      beforeClientEnd: deviceSettled,
    });
    forget?.();
    unlist?.();
    metrics.clientSessionsActive.dec();
    release();
    releaseCap();
    this.grants.delete(grant);
    const reason = typeof result.reason === 'string' ? result.reason : result.reason.code;
    splog.info({ reason }, `client session ended${typeof result.reason === 'string' ? '' : `: ${result.reason.message}`}`);
    audit?.write({ event: 'session-end', ...auditSession, reason, durationMs: Math.round(performance.now() - startedAt) });
  }
}

/**
 * Sends exit-status on a server channel that is ending. 'prefinish' comes once every write
 * has gone out and just before ssh2 sends EOF and close, so the status follows the last byte
 * of data; but by then ssh2's public exit() refuses (the stream is no longer writable), so
 * this goes one level down to the same protocol call exit() makes.
 */
function sendExitStatus(channel: ServerChannel, code: number | undefined): void {
  if (code === undefined) return;
  const c = channel as unknown as { outgoing: { id: number; state: string }; _client?: { _protocol?: { exitStatus(id: number, code: number): void } } };
  if (c.outgoing.state === 'open') c._client?._protocol?.exitStatus(c.outgoing.id, code);
}

/** How long a client's channel end waits for the device's exit-status. */
const EXIT_STATUS_WAIT_MS = 500;

/** Resolves once `channel` reported its exit status or closed, or after `ms`. */
function waitForExit(channel: ssh2.ClientChannel, ms: number): Promise<void> {
  const c = channel as ssh2.ClientChannel & { _exit?: { code?: number | null }; closed?: boolean };
  if (c._exit?.code !== undefined || c.closed || channel.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      channel.off('exit', done);
      channel.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    channel.once('exit', done);
    channel.once('close', done);
  });
}

function registryKnows(deps: NorthboundDeps, deviceId: string): boolean {
  return deps.inventory().get(deviceId) !== undefined;
}

function describeRoute(route: Route): string {
  return route.kind === 'shared' ? 'the shared northbound port' : `device ${route.deviceId}`;
}

function withTimeout<T>(promise: Promise<T>, seconds: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', message)), seconds * 1000);
    }),
  ]).finally(() => clearTimeout(timer));
}
