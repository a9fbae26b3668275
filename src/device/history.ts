// What happened to each device's connections over time, kept across its reconnects: how
// often it called again and why its last connections ended. A device that flaps shows here
// (and in /api/devices) without anyone reading logs. Bounded per device and to inventory ids.
import type { GatewayError } from '../errors.js';

export interface DisconnectRecord {
  at: string;
  /** The GW_ERR_* code, as in the log's `reason` and the disconnect metric's label. */
  reason: string;
  message: string;
}

/** Why the device's last connection attempt failed (cleared once it connects). */
export interface LastError {
  /** A label as in the metrics: `auth_failed`, `handshake_failed`, `not_netconf`, `timeout`, `flapping`, … */
  reason: string;
  at: string;
  message: string;
}

export interface DeviceHistoryView {
  /** Connections after the first one since the gateway started. */
  reconnects: number;
  /** The newest first. */
  lastDisconnects: DisconnectRecord[];
  /** null while the last attempt succeeded (or none failed since start). */
  lastError: LastError | null;
}

export class DeviceHistory {
  private readonly byId = new Map<string, Entry>();

  constructor(private readonly keep = 10) {}

  connected(id: string): void {
    const e = this.entry(id);
    e.connects++;
    e.lastError = null;
  }

  /**
   * A known device's attempt failed before it was connected, or was refused (e.g. as
   * flapping): `reason` is the label an operator sees (`auth_failed`, `flapping`, …). The
   * gateway calls this for every identified device session that ends before it connects,
   * with its GW_ERR_* code in lower case (so a refusal as GW_ERR_FLAPPING shows as
   * `flapping`); other detectors may call it directly.
   */
  attemptFailed(id: string, reason: string, message: string, at = new Date()): void {
    this.entry(id).lastError = { reason, at: at.toISOString(), message };
  }

  disconnected(id: string, reason: GatewayError, at = new Date()): void {
    const e = this.entry(id);
    e.last.unshift({ at: at.toISOString(), reason: reason.code, message: reason.message });
    if (e.last.length > this.keep) e.last.length = this.keep;
  }

  view(id: string): DeviceHistoryView {
    const e = this.byId.get(id);
    return { reconnects: e ? Math.max(0, e.connects - 1) : 0, lastDisconnects: e ? [...e.last] : [], lastError: e?.lastError ?? null };
  }

  /** Drops what is known of ids no longer in the inventory. */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.byId.keys()) if (!keep.has(id)) this.byId.delete(id);
  }

  private entry(id: string): Entry {
    let e = this.byId.get(id);
    if (!e) this.byId.set(id, (e = { connects: 0, last: [], lastError: null }));
    return e;
  }
}

interface Entry {
  connects: number;
  last: DisconnectRecord[];
  lastError: LastError | null;
}
