// NETCONF-level liveness of a held session. RFC 6520 heartbeats are not offered by OpenSSL;
// a cheap <get> with an empty filter shows the device's NETCONF server is alive, not only its
// TCP stack. Pure: the adapter calls tick() every interval and does what it says.

export type KeepaliveState = 'off' | 'on';

/** What to do at a tick. */
export type KeepaliveAction = { kind: 'none' } | { kind: 'send' } | { kind: 'dead'; silentMs: number };

export class Keepalive {
  #state: KeepaliveState = 'on';
  #lastHeard: number;

  /** `intervalMs` 0 turns keepalives off for good. */
  constructor(
    readonly intervalMs: number,
    now: number,
  ) {
    this.#lastHeard = now;
  }

  get state(): KeepaliveState {
    return this.#state;
  }

  /** Whether the adapter should have a timer running. */
  get wanted(): boolean {
    return this.intervalMs > 0 && this.#state === 'on';
  }

  /**
   * NETCONF keepalives only serve a session that is lent: a device whose clients have
   * channels of their own is watched by SSH keepalives.
   */
  set(enabled: boolean): void {
    this.#state = enabled ? 'on' : 'off';
  }

  /** The device sent something. */
  heard(now: number): void {
    this.#lastHeard = now;
  }

  /**
   * One interval passed. With requests outstanding, a device silent for three intervals is
   * dead; while a client's message is half written nothing may be interleaved; otherwise a
   * keepalive goes out (its reply counts as something heard).
   */
  tick(now: number, outstanding: number, writing: boolean): KeepaliveAction {
    if (!this.wanted) return { kind: 'none' };
    if (outstanding > 0) {
      const silentMs = now - this.#lastHeard;
      return silentMs > 3 * this.intervalMs ? { kind: 'dead', silentMs } : { kind: 'none' };
    }
    return writing ? { kind: 'none' } : { kind: 'send' };
  }
}
