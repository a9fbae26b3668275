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

export interface DeviceHistoryView {
  /** Connections after the first one since the gateway started. */
  reconnects: number;
  /** The newest first. */
  lastDisconnects: DisconnectRecord[];
}

export class DeviceHistory {
  private readonly byId = new Map<string, { connects: number; last: DisconnectRecord[] }>();

  constructor(private readonly keep = 10) {}

  connected(id: string): void {
    this.entry(id).connects++;
  }

  disconnected(id: string, reason: GatewayError, at = new Date()): void {
    const e = this.entry(id);
    e.last.unshift({ at: at.toISOString(), reason: reason.code, message: reason.message });
    if (e.last.length > this.keep) e.last.length = this.keep;
  }

  view(id: string): DeviceHistoryView {
    const e = this.byId.get(id);
    return { reconnects: e ? Math.max(0, e.connects - 1) : 0, lastDisconnects: e ? [...e.last] : [] };
  }

  /** Drops what is known of ids no longer in the inventory. */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.byId.keys()) if (!keep.has(id)) this.byId.delete(id);
  }

  private entry(id: string): { connects: number; last: DisconnectRecord[] } {
    let e = this.byId.get(id);
    if (!e) this.byId.set(id, (e = { connects: 0, last: [] }));
    return e;
  }
}
