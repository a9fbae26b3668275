// Automatic per-device northbound ports (`northbound.portRange`): a device without its own
// `port:` gets one from the range, and keeps it, across inventory reloads, reconnects and
// restarts, because the assignments live in `<stateDir>/device-ports.json`. Managers that
// only know host and port can then be configured once.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../log.js';
import { writeDurably } from '../state/durable-file.js';

export const PORT_ASSIGNMENTS_FILE = 'device-ports.json';

export class PortAssignments {
  /** device id → port; kept for devices that left the inventory until their port is needed. */
  private readonly byId = new Map<string, number>();
  readonly file: string;

  constructor(
    stateDir: string,
    private readonly range: [number, number],
    private readonly logger: Logger,
  ) {
    this.file = path.join(stateDir, PORT_ASSIGNMENTS_FILE);
    this.load();
  }

  /**
   * The port of every inventory device that has no `port:` of its own. Earlier assignments
   * stand; new devices get the lowest free port; when the range is full, ports of devices no
   * longer in the inventory are reused. Devices left without a port are logged.
   */
  assign(inventory: Inventory): Map<string, number> {
    const outcome = assignPorts(this.byId, inventory, this.range);
    logAssignment(outcome, this.range, this.logger);
    this.byId.clear();
    for (const [id, port] of outcome.byId) this.byId.set(id, port);
    if (outcome.changed) this.save();
    return outcome.result;
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.error({ file: this.file }, `device ports not read: ${(err as Error).message}`);
      return;
    }
    try {
      const doc = JSON.parse(text) as { ports?: Record<string, unknown> };
      const [first, last] = this.range;
      for (const [id, port] of Object.entries(doc.ports ?? {})) {
        // A port outside a changed range is given up; its device is assigned anew.
        if (typeof port === 'number' && Number.isInteger(port) && port >= first && port <= last) this.byId.set(id, port);
      }
    } catch (err) {
      this.logger.error({ file: this.file }, `device ports file is not valid JSON, assigning anew: ${(err as Error).message}`);
    }
  }

  private save(): void {
    try {
      const ports = Object.fromEntries([...this.byId].sort(([a], [b]) => (a < b ? -1 : 1)));
      writeDurably(this.file, JSON.stringify({ version: 1, ports }, null, 2) + '\n');
    } catch (err) {
      this.logger.error({ file: this.file }, `device ports not saved: ${(err as Error).message}`);
    }
  }
}

/** What one assignment round decided: the ports, the new stored map and what to log. */
export interface PortOutcome {
  result: Map<string, number>;
  byId: Map<string, number>;
  changed: boolean;
  full: string[];
  moved: Array<{ device: string; from: number; to: number }>;
}

/**
 * One assignment round on `stored` (device id → port; not modified), the same on every
 * store: earlier assignments stand, new devices get the lowest free port, a full range
 * reuses ports of devices gone from the inventory.
 */
export function assignPorts(stored: ReadonlyMap<string, number>, inventory: Inventory, range: [number, number]): PortOutcome {
  const [first, last] = range;
  const byId = new Map(stored);
  const explicit = new Set<number>();
  for (const e of inventory.devices.values()) if (e.port !== undefined) explicit.add(e.port);
  const result = new Map<string, number>();
  const taken = new Set<number>(explicit);
  const outcome: PortOutcome = { result, byId, changed: false, full: [], moved: [] };
  const wanting: string[] = [];
  for (const e of inventory.devices.values()) {
    if (e.port !== undefined) continue;
    const had = byId.get(e.id);
    if (had !== undefined && !taken.has(had)) {
      result.set(e.id, had);
      taken.add(had);
    } else {
      wanting.push(e.id);
    }
  }
  // Ports held by devices that left the inventory stay theirs while others are free.
  const heldByAbsent = new Set<number>();
  for (const [id, port] of byId) if (!inventory.devices.has(id) && !taken.has(port)) heldByAbsent.add(port);
  for (const id of wanting) {
    let port: number | undefined;
    for (let p = first; p <= last && port === undefined; p++) if (!taken.has(p) && !heldByAbsent.has(p)) port = p;
    if (port === undefined) {
      for (const [absentId, p] of byId) {
        if (heldByAbsent.has(p)) {
          port = p;
          heldByAbsent.delete(p);
          byId.delete(absentId);
          break;
        }
      }
    }
    if (port === undefined) {
      outcome.full.push(id);
      if (byId.delete(id)) outcome.changed = true;
      continue;
    }
    const had = byId.get(id);
    if (had !== undefined) outcome.moved.push({ device: id, from: had, to: port });
    byId.set(id, port);
    result.set(id, port);
    taken.add(port);
    outcome.changed = true;
  }
  return outcome;
}

export function logAssignment(outcome: PortOutcome, range: [number, number], logger: Logger): void {
  for (const id of outcome.full) logger.error({ device: id, portRange: `${range[0]}-${range[1]}` }, 'northbound.portRange is full: device gets no port of its own');
  for (const m of outcome.moved) logger.warn(m, 'device port reassigned: its port is now taken');
}
