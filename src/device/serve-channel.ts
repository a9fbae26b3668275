// A client session on an SSH device that opens a channel per session: the client's channel
// is spliced 1:1 to a new `netconf` channel on the device's connection, metered on the way.
// A device that turns out to refuse a second channel is lent its held session instead.
import type { ClientChannel, ServerChannel } from 'ssh2';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import { CLIENT_SESSION_RESULTS, GatewayMetrics, type ClientSessionResult } from '../metrics.js';
import { NetconfMeter } from '../netconf/meter.js';
import { filterStages } from '../splice/filter-stages.js';
import { splice } from '../splice/splice.js';
import type { ClientSession, ClientSessionKind, SessionResult } from './client.js';
import type { HeldSession } from './held/session.js';
import { serveHeldSession } from './serve-held.js';

/** What serving on channels needs of the device's connection (device/session.ts). */
export interface ChannelDevice {
  readonly signal: AbortSignal;
  openNetconfChannel(): Promise<ClientChannel>;
  /** Counts a client session on the device; returns the release. */
  trackSession(): () => void;
  /** A client's channel was refused: lend the held session from now on, if there is one. */
  fallBackToSingle(reason: string): HeldSession | undefined;
  /** Seconds the channel may take to open; default the client's channelOpenTimeout. */
  readonly openTimeout?: number;
}

/**
 * What an opened channel may say of itself. A forwarded session's stream (cluster/peer-stream.ts)
 * tells how the owner serves it; when the owner lends its held session, the held session
 * there counts the NETCONF messages (as it does for every client it is lent to), so they are
 * not counted here too.
 */
interface ChannelTraits {
  kind?: ClientSessionKind;
  meteredByOwner?: boolean;
}

export async function serveOnChannel(device: ChannelDevice, client: ClientSession): Promise<SessionResult> {
  const { channel, limits, metrics } = client;
  const capped = client.admit();
  if (typeof capped === 'string') return { kind: 'refused', result: 'rejected_limit', reason: capped };
  const releaseCap = capped;
  let deviceChannel: ClientChannel;
  let gaveUp = false;
  const opening = device.openNetconfChannel();
  // A channel that opens after we gave up must not be left open on the device.
  opening.then(
    (late) => gaveUp && late.close(),
    () => {},
  );
  try {
    const seconds = device.openTimeout ?? limits.channelOpenTimeout;
    deviceChannel = await withTimeout(opening, seconds, `device ${client.deviceId} did not open a channel within ${seconds}s`);
  } catch (err) {
    gaveUp = true;
    releaseCap();
    // A device that turns out to allow one session: lend it its held first session instead.
    const held = isGatewayError(err, 'GW_ERR_CHANNEL_REFUSED') ? device.fallBackToSingle(describeError(err)) : undefined;
    if (held) return serveHeldSession(held, client);
    return { kind: 'refused', result: refusalResult(err), reason: describeError(err) };
  }
  const traits = deviceChannel as ClientChannel & ChannelTraits;
  // Each NETCONF message is counted once cluster-wide: where the manager is (see ChannelTraits, ClientSession.forwarded).
  const counted = !client.forwarded && traits.meteredByOwner !== true;
  const release = device.trackSession();
  const stats = { to_device: 0, to_client: 0, messagesToDevice: 0 };
  // Read-only users: refused RPCs are answered by the gateway and never reach the device.
  const filter = client.filter(false);
  // Revocation by a users-file reload or an operator ends this session with its own reason.
  const revoked = new AbortController();
  client.started(
    traits.kind ?? 'channel',
    () => ({ bytesToDevice: stats.to_device, bytesToClient: stats.to_client, rpcs: Math.max(0, stats.messagesToDevice - 1), denied: filter?.denied ?? 0 }),
    (why) => revoked.abort(why),
  );
  const meter = new NetconfMeter(
    {
      message: (direction) => {
        if (counted) metrics.netconfMessagesTotal.inc({ direction });
        if (direction === 'to_device') stats.messagesToDevice++; // the first is the hello
      },
      bytes: (direction, n) => {
        if (counted) metrics.netconfBytesTotal.inc({ direction }, n);
        stats[direction] += n;
      },
      rpc: (operation, id, seconds, rpcResult) => {
        if (counted) metrics.rpcDuration.observe({ operation: GatewayMetrics.operationLabel(operation) }, seconds);
        client.rpc(operation, id, rpcResult, Math.round(seconds * 1e6) / 1e3);
      },
      hello: (direction, _caps, sessionId) => {
        if (direction === 'to_client' && sessionId) client.deviceSession(sessionId);
      },
    },
    { maxMessageBytes: limits.maxMessageBytes, maxHelloBytes: limits.maxHelloBytes },
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
    onStart: (handle) => (forget = client.inFlight(meter, handle)),
    onError: (reason) => {
      if (channel.stderr.writable) channel.stderr.write(`callhome-gateway: ${reason.message}\n`);
    },
    ...(filter ? { filter: filterStages(filter) } : {}),
    beforeClientEnd: deviceSettled,
  });
  forget?.();
  release();
  releaseCap();
  if (typeof result.reason === 'string') return { kind: 'ended', reason: result.reason };
  return { kind: 'ended', reason: result.reason.code, message: result.reason.message };
}

/**
 * Sends exit-status on a server channel that is ending. 'prefinish' comes once every write
 * has gone out and just before ssh2 sends EOF and close, so the status follows the last byte
 * of data; but by then ssh2's public exit() refuses (the stream is no longer writable), so
 * this goes one level down to the same protocol call exit() makes.
 */
function sendExitStatus(channel: ServerChannel, code: number | undefined): void {
  if (code === undefined) return;
  // A forwarded session's peer stream (cluster/peer-stream.ts) takes a status at any time.
  if (!('outgoing' in channel)) {
    (channel as { exit(code: number): void }).exit(code);
    return;
  }
  const c = channel as unknown as { outgoing: { id: number; state: string }; _client?: { _protocol?: { exitStatus(id: number, code: number): void } } };
  if (c.outgoing.state === 'open') c._client?._protocol?.exitStatus(c.outgoing.id, code);
}

/** The result a refusal is counted under: a forwarded session's says it (cluster/remote-device.ts). */
function refusalResult(err: unknown): ClientSessionResult {
  const result = isGatewayError(err) ? err.fields.result : undefined;
  return CLIENT_SESSION_RESULTS.includes(result as ClientSessionResult) ? (result as ClientSessionResult) : 'device_unavailable';
}

/** How long a client's channel end waits for the device's exit-status. */
const EXIT_STATUS_WAIT_MS = 500;

/** Resolves once `channel` reported its exit status or closed, or after `ms`. */
function waitForExit(channel: ClientChannel, ms: number): Promise<void> {
  const c = channel as ClientChannel & { _exit?: { code?: number | null }; closed?: boolean };
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

function withTimeout<T>(promise: Promise<T>, seconds: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', message)), seconds * 1000);
    }),
  ]).finally(() => clearTimeout(timer));
}
