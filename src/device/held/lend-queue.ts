// Who gets a held session next: the clients waiting while another holds it, first come first
// served, each for a bounded time. Pure: the adapter keeps the timers and the streams; this
// decides admission and order and reports the waiting/busy events.
import type { HeldEvents } from './events.js';

export interface QueueOptions {
  /** Seconds a client waits while another holds the session; 0 refuses at once. */
  waitForDevice: number;
  /** Seconds the device may take to answer a departed client's requests. */
  drainTimeout: number;
}

/** What happens to a client that asks for the session. */
export type Admission = { kind: 'grant' } | { kind: 'busy' } | { kind: 'wait'; seconds: number };

export class LendQueue<W> {
  readonly #waiters: W[] = [];

  constructor(
    private readonly options: QueueOptions,
    private readonly events: Pick<HeldEvents, 'waiting' | 'busy'>,
  ) {}

  get length(): number {
    return this.#waiters.length;
  }

  /**
   * `waiter` asks for the session; `held` says another client holds it, `drained` that no
   * reply owed to a departed client is outstanding. A waiting client is queued here.
   */
  enter(waiter: W, held: boolean, drained: boolean): Admission {
    const free = !held && this.#waiters.length === 0;
    if (free && drained) return { kind: 'grant' };
    // Nobody holds the session, it is only draining a departed client's replies: wait for
    // that (bounded by drainTimeout, after which the device is dropped) even without waitForDevice.
    const seconds = free ? Math.max(this.options.waitForDevice, this.options.drainTimeout) : this.options.waitForDevice;
    if (seconds <= 0) {
      this.events.busy();
      return { kind: 'busy' };
    }
    this.#waiters.push(waiter);
    this.events.waiting(1);
    return { kind: 'wait', seconds };
  }

  /** `waiter` stops waiting (it left, or its time ran out: then `busy`); false if it was not waiting. */
  leave(waiter: W, busy: boolean): boolean {
    const i = this.#waiters.indexOf(waiter);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    this.events.waiting(-1);
    if (busy) this.events.busy();
    return true;
  }

  /** The next waiter, taken off the queue. */
  next(): W | undefined {
    const w = this.#waiters.shift();
    if (w !== undefined) this.events.waiting(-1);
    return w;
  }

  /** Every waiter, taken off the queue (the device went away). */
  clear(): W[] {
    const all = this.#waiters.splice(0);
    for (let i = 0; i < all.length; i++) this.events.waiting(-1);
    return all;
  }
}
