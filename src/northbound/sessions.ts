// The live client sessions, for the operator API: who is on which device, since when, how
// much has moved, and a way to end one. One registry object per gateway; an entry is added
// when a session is spliced (or a held device session is lent) and removed when it ends.
// Also keeps `callhome_device_client_sessions{device}`: a series only for devices that have
// sessions now, so its cardinality follows the sessions, not the inventory.
import type { Gauge } from 'prom-client';
import type { GatewayError } from '../errors.js';
import type { UserAccess } from './auth.js';

export interface ClientSessionView {
  id: string;
  user: string;
  device: string;
  /** This replica's id (the host name; there is one replica without cluster mode). */
  replica: string;
  remoteAddress: string;
  startedAt: string;
  bytesToDevice: number;
  bytesToClient: number;
  rpcs: number;
  access: UserAccess;
  /** `channel`: a netconf channel of its own on the device; `held`: the device's one session, lent. */
  kind: 'channel' | 'held';
  /** RPCs the gateway refused (read-only users). */
  denied: number;
}

/** What a session reports about itself; counters are read when the list is asked for. */
export interface LiveClientSession {
  readonly user: string;
  readonly device: string;
  readonly remoteAddress: string;
  readonly access: UserAccess;
  readonly kind: 'channel' | 'held';
  stats(): { bytesToDevice: number; bytesToClient: number; rpcs: number; denied: number };
  /** Ends the session; the client sees `reason.message` on the channel's stderr. */
  end(reason: GatewayError): void;
}

interface Entry {
  id: string;
  startedAt: Date;
  session: LiveClientSession;
}

export class ClientSessions {
  private readonly live = new Map<string, Entry>();
  private readonly perDeviceCount = new Map<string, number>();
  private counter = 0;

  constructor(
    readonly replica: string,
    private readonly perDevice: Gauge<'device'>,
  ) {}

  /** A short id unique within this process (used when no audit log hands one out). */
  nextId(): string {
    this.counter++;
    return `${process.pid.toString(36)}-${Date.now().toString(36)}-s${this.counter.toString(36)}`;
  }

  /** Registers a started session under `id`; returns the function that removes it (idempotent). */
  add(id: string, session: LiveClientSession): () => void {
    const entry: Entry = { id, startedAt: new Date(), session };
    this.live.set(id, entry);
    this.count(session.device, +1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      if (this.live.get(id) === entry) this.live.delete(id);
      this.count(session.device, -1);
    };
  }

  private count(device: string, delta: number): void {
    const n = (this.perDeviceCount.get(device) ?? 0) + delta;
    if (n > 0) {
      this.perDeviceCount.set(device, n);
      this.perDevice.set({ device }, n);
    } else {
      this.perDeviceCount.delete(device);
      this.perDevice.remove({ device });
    }
  }

  list(): ClientSessionView[] {
    return [...this.live.values()].map(({ id, startedAt, session: s }) => ({
      id,
      user: s.user,
      device: s.device,
      replica: this.replica,
      remoteAddress: s.remoteAddress,
      startedAt: startedAt.toISOString(),
      ...s.stats(),
      access: s.access,
      kind: s.kind,
    }));
  }

  get(id: string): ClientSessionView | undefined {
    return this.list().find((s) => s.id === id);
  }

  get size(): number {
    return this.live.size;
  }

  /** Ends session `id` for `reason`; false if there is no such session. */
  kill(id: string, reason: GatewayError): boolean {
    const entry = this.live.get(id);
    if (!entry) return false;
    entry.session.end(reason);
    return true;
  }
}
