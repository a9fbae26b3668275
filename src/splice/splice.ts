// Joins one client channel and one device channel. Bytes pass unchanged in both
// directions through a pass-through observer; the SSH channel windows are the only
// buffers (ssh2 Channel's highWaterMark is its window), so a slow reader slows the writer.
import { Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import { deliverTo } from './deliver.js';
import type { Direction } from '../netconf/direction.js';
import { outgoingWindow } from '../ssh/internals.js';

export interface SpliceObserver {
  /** Sees every chunk before it is forwarded; throws to end the splice (e.g. malformed framing). */
  observe(direction: Direction, chunk: Buffer): void;
}

export interface SpliceOptions {
  observer?: SpliceObserver;
  /** Ends the splice from outside (device gone, client gone, shutdown). */
  signal?: AbortSignal;
  /**
   * After one side closes, how long the other direction may take to deliver what was
   * already received before everything is torn down.
   */
  drainMs?: number;
  /** Called once, before the channels close, when an error (not a plain close) ends the splice. */
  onError?: (reason: GatewayError) => void;
  /** Called once at the start with a handle for a graceful drain (see lifecycle/drain.ts). */
  onStart?: (handle: SpliceHandle) => void;
  /** Awaited before the client's channel is ended once the device's side is done (bounded by the caller). */
  beforeClientEnd?: () => Promise<void>;
  /** Stages that may change what passes (the read-only filter): after the observer toward the device, before it toward the client. */
  filter?: { toDevice: Transform; toClient: Transform };
}

/** What a drain needs of a running splice. */
export interface SpliceHandle {
  /** Bytes received by one side and not yet handed to the other side's SSH channel. */
  buffered(): number;
  /** Ends the splice for `reason` (the client is told, as for any error). */
  stop(reason: GatewayError): void;
}

export interface SpliceResult {
  /** Why the splice ended: which side closed first, or the error that ended it. */
  reason: GatewayError | 'client_closed' | 'device_closed';
}

function observing(direction: Direction, observer: SpliceObserver | undefined, fail: (err: GatewayError) => void, onChunk: (n: number) => void = () => {}): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onChunk(chunk.length);
      try {
        observer?.observe(direction, chunk);
      } catch (err) {
        const reason = isGatewayError(err) ? err : new GatewayError('GW_ERR_FRAMING', describeError(err), { cause: err });
        // Settle the reason (and tell the client) before pipeline() destroys the channels.
        fail(reason);
        done(reason);
        return;
      }
      done(null, chunk);
    },
  });
}

/**
 * Splices until both directions are done or either fails. Never rejects: the result
 * says why it ended. Both channels are closed when it resolves.
 */
export async function splice(client: Duplex, device: Duplex, options: SpliceOptions = {}): Promise<SpliceResult> {
  const drainMs = options.drainMs ?? 2000;
  const controller = new AbortController();
  let reason: SpliceResult['reason'] | undefined;
  const stop = (why: SpliceResult['reason']) => {
    reason ??= why;
    if (controller.signal.aborted) return;
    // Tell the client why before the pipelines tear the channels down.
    if (why instanceof GatewayError) options.onError?.(why);
    controller.abort(why);
    // ssh2's Channel#destroy() (what the aborted pipeline calls) neither marks the stream
    // destroyed nor emits 'close'; a channel of a dead connection emits 'close' only after
    // 'end', i.e. once its buffered data is read. Close both and let them drain into nothing,
    // or the pipelines wait for those events forever.
    for (const channel of [client, device]) {
      closeChannel(channel);
      channel.resume();
    }
  };
  const onOuterAbort = () => {
    const r = options.signal?.reason;
    stop(isGatewayError(r) ? r : new GatewayError('GW_ERR_DEVICE_CLOSED', describeError(r)));
  };
  if (options.signal?.aborted) onOuterAbort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  // ssh2 never calls back a write into a channel that is already closed, so a pipeline
  // can wait forever on a dead side: when either channel closes, let the other direction
  // drain what it already holds for a bounded time, then tear both down.
  let drainTimer: NodeJS.Timeout | undefined;
  let moved = 0;
  // The drain deadline runs from the last progress, not from the close: a large reply still
  // trickling out to a slow reader is delivered whole (cf. ssh2 #1508, where closing while
  // writes wait for window drops them); only a side that stops moving is torn down.
  const progress = () => `${moved}:${client.writableLength}:${device.writableLength}:${outgoingWindow(client)}:${outgoingWindow(device)}`;
  const onClose = (which: 'client_closed' | 'device_closed') => () => {
    reason ??= which;
    if (drainTimer) return;
    let last = progress();
    const check = () => {
      const now = progress();
      if (now !== last && !controller.signal.aborted) {
        last = now;
        drainTimer = setTimeout(check, drainMs);
      } else stop(which);
    };
    drainTimer = setTimeout(check, drainMs);
  };
  const onClientClose = onClose('client_closed');
  const onDeviceClose = onClose('device_closed');
  client.once('close', onClientClose);
  device.once('close', onDeviceClose);

  const run = (stages: [Duplex, ...Duplex[]], to: Duplex, whenDone: 'client_closed' | 'device_closed') =>
    pipeline([...stages, deliverTo(to, to === client && options.beforeClientEnd ? { beforeEnd: options.beforeClientEnd } : {})], { signal: controller.signal }).then(
      () => {
        // The source ended cleanly and everything reached the other side: that side is done.
        reason ??= whenDone;
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        stop(isGatewayError(err) ? err : new GatewayError('GW_ERR_DEVICE_CLOSED', describeError(err), { cause: err }));
      },
    );

  const count = (n: number) => (moved += n);
  const toDeviceStage = observing('to_device', options.observer, stop, count);
  const toClientStage = observing('to_client', options.observer, stop, count);
  const filters = options.filter ? [options.filter.toDevice, options.filter.toClient] : [];
  options.onStart?.({
    buffered: () => [client, device, toDeviceStage, toClientStage, ...filters].reduce((n, s) => n + s.readableLength + s.writableLength, 0),
    stop,
  });
  // The observer sees what the client sent and what it receives (a refused <rpc> and its answer too).
  const toDevice = run([client, toDeviceStage, ...(options.filter ? [options.filter.toDevice] : [])], device, 'client_closed');
  const toClient = run([device, ...(options.filter ? [options.filter.toClient] : []), toClientStage], client, 'device_closed');
  // An EOF alone arms no timer: a client that sent EOF after its last <rpc> still waits
  // for the reply, as it would on a direct connection (`ssh -s netconf < rpc.xml`).
  // After an abort, never wait on the pipelines longer than the drain allows.
  let giveUp: NodeJS.Timeout | undefined;
  const abandoned = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => (giveUp = setTimeout(resolve, drainMs)), { once: true }));
  await Promise.race([Promise.all([toDevice, toClient]), abandoned]);
  clearTimeout(giveUp);

  clearTimeout(drainTimer);
  options.signal?.removeEventListener('abort', onOuterAbort);
  client.off('close', onClientClose);
  device.off('close', onDeviceClose);
  closeChannel(client);
  closeChannel(device);
  return { reason: reason ?? 'client_closed' };
}

function closeChannel(channel: Duplex): void {
  // ssh2 channels: close() sends CHANNEL_CLOSE; plain streams: destroy().
  const c = channel as Duplex & { close?: () => void };
  if (typeof c.close === 'function') c.close();
  else channel.destroy();
}
