// Flapping devices: a device whose connections end within seconds of login, again and
// again (a stack that drops the connection when a session ends, a crash loop, a NAT that
// forgets). Each such connection looks like a success on its own; here they are counted in
// a row per device, so the API can say `flapping` instead of `connected`, and a metric can
// alert on it. Bounded to inventory ids, in memory.
import type { Counter } from 'prom-client';
import type { GatewayError } from '../errors.js';
import type { Transport } from '../metrics.js';

export interface FlapOptions {
  /** Seconds: a connection that ends sooner than this after login is a short one. */
  window: number;
  /** Short connections in a row from which the device is flapping. */
  count: number;
}

export interface FlapView {
  /** When the current streak of short connections began. */
  since: string;
  shortConnections: number;
  /** How the last short connection ended (GW_ERR_* code and message). */
  lastReason: string;
  lastMessage: string;
}

interface FlapState {
  connectedAt: number | undefined;
  streak: number;
  streakSince: number;
  lastShortEnd: number;
  lastReason: string;
  lastMessage: string;
}

const GATEWAY_ENDED = new Set<string>(['GW_ERR_SHUTDOWN', 'GW_ERR_REMOVED', 'GW_ERR_IDLE_RELEASE']);

/** A flapping device that stays away this long is shown as disconnected again. */
const FLAPPING_HOLD_MS = 60_000;

export class FlapDetector {
  private readonly byId = new Map<string, FlapState>();

  constructor(
    private readonly options: FlapOptions,
    private readonly flaps: Counter<'transport'>,
    /** Each short connection of a flapping device; `first` when it just began to flap. */
    private readonly onFlap: (id: string, view: FlapView, first: boolean) => void = () => {},
  ) {}

  connected(id: string, at: number): void {
    this.entry(id).connectedAt = at;
  }

  /** The connection of `id` that logged in at `connectedAt` ended (a newer one may already be up). */
  disconnected(id: string, transport: Transport, connectedAt: number, reason: GatewayError, now = Date.now()): void {
    const e = this.entry(id);
    const lived = now - connectedAt;
    if (e.connectedAt === connectedAt) e.connectedAt = undefined;
    if (GATEWAY_ENDED.has(reason.code)) return; // the gateway's own doing says nothing of the device
    if (lived >= this.options.window * 1000) {
      e.streak = 0;
      return;
    }
    if (e.streak === 0) e.streakSince = now;
    e.streak++;
    e.lastShortEnd = now;
    e.lastReason = reason.code;
    e.lastMessage = reason.message;
    if (e.streak >= this.options.count) {
      this.flaps.inc({ transport });
      this.onFlap(id, this.describe(e), e.streak === this.options.count);
    }
  }

  /** The device's flapping streak, or undefined when it is not flapping now. */
  view(id: string, now = Date.now()): FlapView | undefined {
    const e = this.byId.get(id);
    if (!e || e.streak < this.options.count) return undefined;
    // Connected: flapping until this connection outlives the window. Away: for a while.
    const current = e.connectedAt !== undefined ? now - e.connectedAt < this.options.window * 1000 : now - e.lastShortEnd < FLAPPING_HOLD_MS;
    return current ? this.describe(e) : undefined;
  }

  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.byId.keys()) if (!keep.has(id)) this.byId.delete(id);
  }

  private describe(e: FlapState): FlapView {
    return { since: new Date(e.streakSince).toISOString(), shortConnections: e.streak, lastReason: e.lastReason, lastMessage: e.lastMessage };
  }

  private entry(id: string): FlapState {
    let e = this.byId.get(id);
    if (!e) this.byId.set(id, (e = { connectedAt: undefined, streak: 0, streakSince: 0, lastShortEnd: 0, lastReason: '', lastMessage: '' }));
    return e;
  }
}
