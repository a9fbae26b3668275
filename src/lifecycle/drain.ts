// Graceful drain of client sessions on shutdown. Every running splice is registered here
// with its meter; on drain, a splice is ended as soon as nothing is in flight on it (no RPC
// awaiting its reply, no message part-way through, nothing buffered between the channels),
// so no reply that has begun reaching a client is cut, and idle sessions close at once.
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NetconfMeter } from '../netconf/meter.js';
import type { SpliceHandle } from '../splice/splice.js';

interface Tracked {
  meter: NetconfMeter;
  splice: SpliceHandle;
}

const POLL_MS = 25;

export class InFlightSessions {
  private readonly live = new Set<Tracked>();
  private draining = false;
  private readonly stopped = new AbortController();

  /** Registers a running splice; returns the function that forgets it. */
  add(meter: NetconfMeter, splice: SpliceHandle): () => void {
    const entry: Tracked = { meter, splice };
    this.live.add(entry);
    // A session that starts while draining is ended as soon as it is idle, like the rest.
    return () => this.live.delete(entry);
  }

  get size(): number {
    return this.live.size;
  }

  /** Client sessions with an RPC or a message in flight right now. */
  get busy(): number {
    return [...this.live].filter(isBusy).length;
  }

  /**
   * Ends each session once it is idle. Resolves true when all ended within `graceSeconds`,
   * false when the grace ran out (or abort() was called) with sessions still busy; those
   * are left to the caller to close.
   */
  async drain(graceSeconds: number): Promise<boolean> {
    this.draining = true;
    const reason = new GatewayError('GW_ERR_SHUTDOWN', 'the gateway is shutting down');
    const deadline = Date.now() + graceSeconds * 1000;
    for (;;) {
      for (const entry of [...this.live]) {
        if (!isBusy(entry)) {
          this.live.delete(entry);
          entry.splice.stop(reason);
        }
      }
      if (this.live.size === 0) return true;
      if (this.stopped.signal.aborted || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Stops a drain in progress (a second signal): it resolves false at its next look. */
  abort(): void {
    this.stopped.abort();
  }
}

function isBusy({ meter, splice }: Tracked): boolean {
  return meter.outstandingRpcs > 0 || meter.inMessage('to_client') || meter.inMessage('to_device') || splice.buffered() > 0;
}

/** Drains client sessions for up to `graceSeconds`, saying so in the log; true when clean. */
export async function drainClientSessions(inFlight: InFlightSessions, graceSeconds: number, logger: Logger): Promise<boolean> {
  const sessions = inFlight.size;
  if (sessions === 0) return true;
  const busy = inFlight.busy;
  logger.info({ sessions, busy, grace: graceSeconds }, 'draining client sessions: idle ones close now, RPCs in flight may finish');
  const started = Date.now();
  const clean = await inFlight.drain(graceSeconds);
  if (clean) logger.info({ ms: Date.now() - started }, 'client sessions drained');
  else logger.warn({ sessions: inFlight.size, reason: 'GW_ERR_SHUTDOWN' }, `drain incomplete after ${graceSeconds}s: closing the remaining client sessions`);
  return clean;
}
