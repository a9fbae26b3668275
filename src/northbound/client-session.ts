// One client `netconf` subsystem, from its acceptance to its end: refusal (no device named,
// not allowed, shutting down), waiting for an offline device to call home, then the device
// serves it (device/client.ts) while this side keeps the books: session caps, metrics,
// audit, the read-only filter and the session list of the operator API.
import { performance } from 'node:perf_hooks';
import type { ServerChannel } from 'ssh2';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClientSessionResult } from '../metrics.js';
import { RpcFilter, readOnlyAllows } from '../netconf/rpc-filter.js';
import { guardChannelWindow } from '../splice/window-guard.js';
import type { ClientSession } from '../device/client.js';
import { localDirectory } from '../device/directory.js';
import type { ReachableDevice } from '../device/live.js';
import type { NorthboundDeps } from './server.js';
import type { UserAccess } from './auth.js';

/** One authenticated client connection or one served session, for revocation on reload. */
export interface Grant {
  user: string;
  deviceId?: string;
  /** The access the user had when the grant was made. */
  access?: UserAccess;
  end(reason: GatewayError): void;
}

/** What a client session needs of the server it came in on. */
export interface ClientSessionServer {
  readonly deps: NorthboundDeps;
  readonly grants: Set<Grant>;
  readonly closing: boolean;
  /** Aborted on close/destroy: ends waits for devices. */
  readonly stopping: AbortSignal;
}

export async function startNetconf(
  server: ClientSessionServer,
  accept: () => ServerChannel | undefined,
  who: { user: string; deviceId?: string },
  log: Logger,
  conn: { client: string; onOverrun: () => void },
): Promise<void> {
  const { metrics, registry, users, options, audit, sessionCaps, sessions, inventory } = server.deps;
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
  if (!users().mayReach(who.user, deviceId) || inventory().get(deviceId) === undefined) {
    refuse('denied', `device ${deviceId} does not exist or user ${who.user} may not reach it`);
    return;
  }
  if (server.closing) {
    refuse('device_unavailable', 'the gateway is shutting down');
    return;
  }
  const directory = server.deps.directory ?? localDirectory(registry);
  let device: ReachableDevice | undefined;
  try {
    device = await directory.find(deviceId);
  } catch (err) {
    // Cluster mode with Redis unreachable: where the device is cannot be known.
    refuse('device_unavailable', describeError(err));
    return;
  }
  const wait = options.waitForDevice ?? 0;
  if (!device && wait > 0) {
    // Hold the session (its <hello> waits in the channel) until the device calls home.
    log.info({ user: who.user, device: deviceId, waitForDevice: wait }, 'client waits for the device to call home');
    const gone = new AbortController();
    const onClose = () => gone.abort();
    channel.once('close', onClose);
    device = await directory.wait(deviceId, wait, AbortSignal.any([gone.signal, server.stopping]));
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
      server.closing ? 'the gateway is shutting down' : wait > 0 ? `device ${deviceId} did not call home within ${wait}s` : `device ${deviceId} is not connected`,
    );
    return;
  }
  const access = users().accessOf(who.user);
  const sessionId = audit?.nextSessionId() ?? sessions?.nextId() ?? '';
  const auditSession: { session: string; user: string; client: string; device: string; deviceSessionId?: string } = {
    session: sessionId,
    user: who.user,
    client: conn.client,
    device: deviceId,
  };
  const slog = log.child({ user: who.user, device: deviceId, session: sessionId || undefined });
  let began: { at: number; unlist?: (() => void) | undefined; grant: Grant } | undefined;
  const client: ClientSession = {
    deviceId,
    who: { user: who.user, access, session: sessionId, client: conn.client },
    channel,
    log: slog,
    metrics,
    limits: options,
    filter: userFilter(who.user, access, options, slog),
    admit: () => sessionCaps?.acquire(who.user, deviceId) ?? (() => {}),
    started: (kind, stats, end) => {
      if (began) return;
      metrics.clientSessionsTotal.inc({ result: 'ok' });
      metrics.clientSessionsActive.inc();
      const grant: Grant = { user: who.user, deviceId, access, end };
      server.grants.add(grant);
      began = { at: performance.now(), grant };
      slog.info({ kind }, 'client session started');
      audit?.write({ event: 'session-start', ...auditSession });
      began.unlist = sessions?.add(sessionId, { user: who.user, device: deviceId, remoteAddress: conn.client, access, kind, stats, end });
    },
    rpc: (operation, messageId, result, durationMs) => audit?.write({ event: 'rpc', ...auditSession, operation, messageId: messageId ?? null, result, durationMs }),
    deviceSession: (id) => (auditSession.deviceSessionId = id),
    inFlight: (meter, handle) => server.deps.inFlight?.add(meter, handle) ?? (() => {}),
  };
  const result = await device.serveClient(client);
  if (began) {
    began.unlist?.();
    metrics.clientSessionsActive.dec();
    server.grants.delete(began.grant);
  }
  if (result.kind === 'refused') {
    refuse(result.result, result.reason);
    return;
  }
  slog.info({ reason: result.reason }, `client session ended${result.message ? `: ${result.message}` : ''}`);
  if (began) audit?.write({ event: 'session-end', ...auditSession, reason: result.reason, durationMs: Math.round(performance.now() - began.at) });
}

/** A user's RPC filter (ClientSession.filter): read-only users' refusals, size checks when `always`. */
export function userFilter(user: string, access: UserAccess, limits: { maxMessageBytes: number; maxHelloBytes: number }, log: Logger) {
  return (always: boolean): RpcFilter | undefined => {
    const readOnly = access === 'read-only';
    if (!readOnly && !always) return undefined;
    const filter = new RpcFilter({
      ...(readOnly ? { allows: readOnlyAllows, who: `user ${user} is read-only and` } : {}),
      maxMessageBytes: limits.maxMessageBytes,
      maxHelloBytes: limits.maxHelloBytes,
    });
    filter.onDenied = (d) => log.info({ operation: d.operation, messageId: d.messageId }, 'RPC refused: the user is read-only');
    return filter;
  };
}
