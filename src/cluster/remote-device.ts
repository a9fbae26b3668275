// A device another replica holds, as the northbound sees it: one more ReachableDevice. A
// client session on it is served here exactly like one on a local SSH device (serveOnChannel:
// session caps, the read-only filter, metering, audit, /api/sessions), except that the
// "channel" is a peer stream to the owner (peer-stream.ts), which opens the device's channel
// or lends its held session there, and answers with the same refusal a local device would.
import tls from 'node:tls';
import type { ClientSession, SessionResult } from '../device/client.js';
import type { ReachableDevice } from '../device/live.js';
import { serveOnChannel } from '../device/serve-channel.js';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import type { ForwardedResult, GatewayMetrics } from '../metrics.js';
import type { DeviceOwner } from './types.js';
import { FrameType } from './peer-frames.js';
import { PROTOCOL_VERSION, parseReply, type PeerRequest } from './peer-protocol.js';
import { PeerStream } from './peer-stream.js';
import { clientOptions, type PeerCredentials } from './peer-tls.js';

export interface PeerDialerDeps {
  replicaId: string;
  credentials: PeerCredentials;
  metrics: GatewayMetrics;
  /** Seconds the owner may take to accept the session (it may wait for a held session: waitForDevice). */
  openTimeout: number;
  /** Aborted when this replica stops: ends forwarded sessions. */
  signal: AbortSignal;
}

/** The opened stream, with how the owner serves it (serve-channel.ts reads these). */
type OpenedStream = PeerStream & { kind?: 'channel' | 'held'; meteredByOwner?: boolean };

export class RemoteDevice implements ReachableDevice {
  constructor(
    readonly owner: DeviceOwner,
    private readonly deps: PeerDialerDeps,
  ) {}

  get deviceId(): string {
    return this.owner.deviceId;
  }

  serveClient(client: ClientSession): Promise<SessionResult> {
    return serveOnChannel(
      {
        signal: this.deps.signal,
        openNetconfChannel: () => this.open(client) as never,
        trackSession: () => () => {}, // the owner counts the device's sessions
        fallBackToSingle: () => undefined, // the owner decides that
        openTimeout: this.deps.openTimeout,
      },
      client,
    );
  }

  /** Dials the owner and asks for the session; resolves once it runs there, rejects with its refusal. */
  private async open(client: ClientSession): Promise<OpenedStream> {
    const { owner, deps } = this;
    const count = (result: ForwardedResult) => deps.metrics.forwardedSessionsTotal.inc({ direction: 'out', result });
    const [host, port] = splitHostPort(owner.peer);
    const socket = tls.connect({ ...clientOptions(deps.credentials), host, port });
    socket.setNoDelay(true); // small requests must not wait for a delayed ACK
    const stream: OpenedStream = new PeerStream(socket, FrameType.Reply);
    const timer = setTimeout(() => stream.fail(new GatewayError('GW_ERR_TIMEOUT', `no answer within ${deps.openTimeout}s`)), deps.openTimeout * 1000);
    const request: PeerRequest = {
      v: PROTOCOL_VERSION,
      device: owner.deviceId,
      user: client.who.user,
      access: client.who.access,
      session: client.who.session || '-',
      client: client.who.client,
      replica: deps.replicaId,
    };
    socket.once('secureConnect', () => stream.send(FrameType.Open, JSON.stringify(request)));
    let payload: Buffer;
    try {
      payload = await stream.first;
    } catch (err) {
      clearTimeout(timer);
      stream.destroy();
      count(isGatewayError(err, 'GW_ERR_PROTOCOL') ? 'protocol_error' : 'unreachable');
      throw new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', `device ${owner.deviceId} is held by replica ${owner.replica}, which cannot be reached: ${describeError(err)}`, {
        cause: err,
      });
    }
    clearTimeout(timer);
    let reply;
    try {
      reply = parseReply(payload);
    } catch (err) {
      stream.destroy();
      count('protocol_error');
      throw new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', `device ${owner.deviceId}: replica ${owner.replica} answered ${describeError(err)}`);
    }
    if (!reply.ok) {
      stream.close();
      count(reply.result);
      // The owner's own words: the manager reads what a local device's refusal would say.
      throw new GatewayError(reply.result === 'rejected_limit' ? 'GW_ERR_REJECTED_LIMIT' : 'GW_ERR_DEVICE_UNAVAILABLE', reply.reason, { fields: { result: reply.result } });
    }
    count('ok');
    stream.kind = reply.kind;
    stream.meteredByOwner = reply.kind === 'held';
    // What the owner says on the client's stderr (a device gone mid-session, an operator there) reaches the manager.
    stream.on('stderr', (line: string) => {
      if (client.channel.stderr.writable) client.channel.stderr.write(line);
    });
    return stream;
  }
}

/** `host:port` or `[v6]:port`. */
export function splitHostPort(peer: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(peer);
  if (!m) throw new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', `replica address "${peer}" is not host:port`);
  return [m[1]!, Number(m[2])];
}
