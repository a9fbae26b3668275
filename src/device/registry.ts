// The live devices: one object, one map, no module-level state. A device calling again
// replaces its older connection; removal is wired to the session's own close, so the
// registry can never hold a dead session.
import { EventEmitter } from 'node:events';
import type { GatewayMetrics } from '../metrics.js';
import { GatewayError } from '../errors.js';
import type { LiveDevice as DeviceSession } from './live.js';

/**
 * Emits 'added' (session) once a connection is registered, for clients waiting on it, and
 * 'removed' (session, reason) once it has ended.
 */
export class DeviceRegistry extends EventEmitter {
  private readonly live = new Map<string, DeviceSession>();

  constructor(private readonly metrics: GatewayMetrics) {
    super();
    this.setMaxListeners(0); // one listener per waiting client session
  }

  /** Registers a connected session, closing an older connection of the same device. */
  add(session: DeviceSession): void {
    const id = session.deviceId;
    const older = this.live.get(id);
    this.live.set(id, session);
    this.metrics.devicesConnected.inc({ transport: session.transport });
    session.signal.addEventListener('abort', () => this.remove(session), { once: true });
    if (older && older !== session) {
      older.kill(new GatewayError('GW_ERR_REPLACED', `device ${id} called home again from ${session.remoteAddress}: its older connection was replaced`));
    }
    this.emit('added', session);
  }

  private remove(session: DeviceSession): void {
    this.metrics.devicesConnected.dec({ transport: session.transport });
    if (this.live.get(session.deviceId) === session) this.live.delete(session.deviceId);
    this.emit('removed', session, session.signal.reason);
  }

  get(id: string): DeviceSession | undefined {
    return this.live.get(id);
  }

  list(): DeviceSession[] {
    return [...this.live.values()];
  }

  get size(): number {
    return this.live.size;
  }

  kill(id: string, reason: GatewayError): boolean {
    const session = this.live.get(id);
    if (!session) return false;
    session.kill(reason);
    return true;
  }

  killAll(reason: GatewayError): void {
    for (const session of [...this.live.values()]) session.kill(reason);
  }
}
