// A client session on a device that has one NETCONF session (TLS call home): instead of a
// new channel on the device, the client is lent the held session (device/held-session.ts),
// waits for it, or gets a clean "busy" failure. The client's channel is seen through an
// RpcFilter (read-only users; byte and RPC counts for the session list).
import type { ServerChannel } from 'ssh2';
import { performance } from 'node:perf_hooks';
import type { AuditLog } from '../audit/audit.js';
import type { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClientSessionResult, GatewayMetrics } from '../metrics.js';
import type { HeldSession } from '../device/held-session.js';
import { RpcFilter, readOnlyAllows } from '../netconf/rpc-filter.js';
import type { UserAccess } from './auth.js';
import { FilteredChannel } from './filtered-channel.js';
import type { ClientSessions } from './sessions.js';

export interface HeldClient {
  id: string;
  user: string;
  client: string;
  access: UserAccess;
  limits: { maxMessageBytes: number; maxHelloBytes: number };
  sessions?: ClientSessions | undefined;
  audit?: AuditLog | undefined;
}

export async function serveHeldSession(
  held: HeldSession,
  deviceId: string,
  channel: ServerChannel,
  ctx: { metrics: GatewayMetrics; log: Logger; refuse: (result: ClientSessionResult, reason: string) => void; client?: HeldClient },
): Promise<void> {
  const { metrics, log, client } = ctx;
  const filter = new RpcFilter({
    ...(client?.access === 'read-only' ? { allows: readOnlyAllows, who: `user ${client.user} is read-only and` } : {}),
    maxMessageBytes: client?.limits.maxMessageBytes ?? 4294967296,
    maxHelloBytes: client?.limits.maxHelloBytes ?? 1048576,
  });
  const view = new FilteredChannel(channel, filter);
  if (client) {
    const auditSession = { session: client.id, user: client.user, client: client.client, device: deviceId };
    filter.onDenied = (d) => {
      log.info({ operation: d.operation, messageId: d.messageId }, 'RPC refused: the user is read-only');
      client.audit?.write({ event: 'rpc', ...auditSession, operation: d.operation, messageId: d.messageId ?? null, result: 'access-denied', durationMs: 0 });
    };
  }
  let counted = false;
  let unlist: (() => void) | undefined;
  let ended: GatewayError | undefined; // set when an operator ends the session
  let startedAt = 0;
  // Counted as active from the moment the session is lent, not while waiting.
  const onLent = () => {
    if (counted) return;
    counted = true;
    startedAt = performance.now();
    metrics.clientSessionsTotal.inc({ result: 'ok' });
    metrics.clientSessionsActive.inc();
    log.info('client session started (held device session lent)');
    if (client) client.audit?.write({ event: 'session-start', session: client.id, user: client.user, client: client.client, device: deviceId });
    if (client?.sessions) {
      unlist = client.sessions.add(client.id, {
        user: client.user,
        device: deviceId,
        remoteAddress: client.client,
        access: client.access,
        kind: 'held',
        stats: () => ({ bytesToDevice: view.bytesToDevice, bytesToClient: view.bytesToClient, rpcs: filter.rpcs, denied: filter.denied }),
        end: (reason) => {
          ended = reason;
          // The held session sees the close, releases what the client left (locks) and lends again.
          if (channel.stderr.writable) channel.stderr.write(`callhome-gateway: ${reason.message}\n`);
          channel.exit(1);
          channel.close();
        },
      });
    }
  };
  const r = await held.serve(view, onLent);
  unlist?.();
  if (counted && client) {
    const reason = ended?.code ?? 'client_closed';
    client.audit?.write({ event: 'session-end', session: client.id, user: client.user, client: client.client, device: deviceId, reason, durationMs: Math.round(performance.now() - startedAt) });
  }
  if (counted) metrics.clientSessionsActive.dec();
  if (r.result === 'busy' || r.result === 'unavailable') {
    ctx.refuse('device_unavailable', `device ${deviceId}: ${r.reason}`);
    return;
  }
  log.info(`client session ended: ${r.reason}`);
}
