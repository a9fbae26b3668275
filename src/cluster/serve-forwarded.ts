// On the device's owner: one session another replica forwarded, served by the device's own
// serveClient like a local client's, with the peer stream as the client's channel. The
// replica the manager reached has authenticated and authorised it, meters its NETCONF
// messages and audits it; here only the device's side is kept: the per-device session cap
// (exact cluster-wide, since every session on a device goes through its owner), the drain
// on shutdown, and the answer: accepted once the device serves, or the one-line refusal the
// manager would get from a local device.
import type { ServerChannel } from 'ssh2';
import type { ClientSession, SessionResult } from '../device/client.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { InFlightSessions } from '../lifecycle/drain.js';
import type { SessionCaps } from '../limits/session-caps.js';
import type { Logger } from '../log.js';
import type { ClientSessionResult, GatewayMetrics } from '../metrics.js';
import type { Users } from '../northbound/auth.js';
import { userFilter } from '../northbound/client-session.js';
import { FrameType } from './peer-frames.js';
import { REFUSAL_RESULTS, type PeerReply, type PeerRequest, type RefusalResult } from './peer-protocol.js';
import type { PeerStream } from './peer-stream.js';

export interface ForwardedDeps {
  registry: DeviceRegistry;
  users: () => Users;
  metrics: GatewayMetrics;
  limits: { maxMessageBytes: number; maxHelloBytes: number; channelOpenTimeout: number };
  sessionCaps?: SessionCaps;
  inFlight?: InFlightSessions;
  /** True once this replica is shutting down. */
  closing: () => boolean;
}

/** Serves `request` on `stream` to its end; resolves with what happened (for the metric and the log). */
export async function serveForwarded(request: PeerRequest, stream: PeerStream, deps: ForwardedDeps, log: Logger): Promise<SessionResult> {
  let answered = false;
  const answer = (reply: PeerReply) => {
    if (answered) return;
    answered = true;
    stream.send(FrameType.Reply, JSON.stringify(reply));
  };
  const refuse = (result: ClientSessionResult, reason: string): SessionResult => {
    answer({ ok: false, result: REFUSAL_RESULTS.includes(result as RefusalResult) ? (result as RefusalResult) : 'device_unavailable', reason });
    return { kind: 'refused', result, reason };
  };
  const { device: deviceId, user } = request;
  // The same reasons, word for word, as a local client gets (northbound/client-session.ts).
  if (deps.closing()) return refuse('device_unavailable', 'the gateway is shutting down');
  if (!deps.users().mayReach(user, deviceId)) return refuse('denied', `device ${deviceId} does not exist or user ${user} may not reach it`);
  const device = deps.registry.get(deviceId);
  if (!device) return refuse('device_unavailable', `device ${deviceId} is not connected`);
  const client: ClientSession = {
    deviceId,
    who: { user, access: request.access, session: request.session, client: request.client },
    forwarded: true,
    channel: stream as unknown as ServerChannel,
    log,
    metrics: deps.metrics,
    limits: deps.limits,
    filter: userFilter(user, request.access, deps.limits, log),
    admit: () => deps.sessionCaps?.acquire(user, deviceId) ?? (() => {}),
    started: (kind) => {
      answer({ ok: true, kind });
      log.info({ kind }, 'forwarded session started');
    },
    rpc: () => {}, // audited where the manager is
    deviceSession: () => {},
    inFlight: (meter, handle) => deps.inFlight?.add(meter, handle) ?? (() => {}),
  };
  const result = await device.serveClient(client);
  if (result.kind === 'refused') return refuse(result.result, result.reason);
  // A session that ended before it was served (the client left while it waited) still gets its answer.
  if (!answered) answer({ ok: false, result: 'device_unavailable', reason: result.message ?? result.reason });
  return result;
}
