// The per-device northbound ports: which port each inventory device should have (its own
// `port:`, else one assigned from northbound.portRange), opening, moving and closing the
// listeners to match, and which ports the gateway keeps for itself.
import type { SharedState } from '../cluster/shared-state.js';
import type { Config } from '../config/schema.js';
import { parsePortRange } from '../config/formats.js';
import { describeError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../log.js';
import { PortAssignments } from '../northbound/port-assignments.js';
import type { NorthboundServer } from '../northbound/server.js';

/** The ports the gateway's own listeners are bound to (0: not yet, or disabled). */
export interface OwnPorts {
  callhomeSsh: number;
  callhomeTls: number;
  northbound: number;
  http: number;
}

export interface DevicePortsDeps {
  config: Config;
  logger: Logger;
  inventory(): Inventory;
  ownPorts(): OwnPorts;
  /** Whether a device came from an approval (its port failing to bind never stops start-up). */
  isApproved(id: string): boolean;
  /** Cluster mode: the port assignments are shared by every replica, in Redis. */
  shared?: SharedState;
}

interface PortAssigner {
  assign(inventory: Inventory): Map<string, number> | Promise<Map<string, number>>;
}

export class DevicePorts {
  private assignments: PortAssigner | undefined;
  /** One sync at a time: change events of the cluster may ask for one while another runs. */
  private syncing: Promise<void> = Promise.resolve();
  private assigned = new Map<string, number>();
  private northbound: NorthboundServer | undefined;

  constructor(private readonly deps: DevicePortsDeps) {}

  /** Starts managing the server's device listeners (and loads the saved port assignments). */
  attach(northbound: NorthboundServer): void {
    const { config, logger } = this.deps;
    const range = parsePortRange(config.northbound.portRange);
    if (range) this.assignments = this.deps.shared ? this.deps.shared.bindPorts(range) : new PortAssignments(config.stateDir, range, logger);
    this.northbound = northbound;
  }

  /** Stops managing the listeners (the gateway is closing): a sync still running opens none. */
  detach(): void {
    this.northbound = undefined;
  }

  /** The device ports listening now (device id → port). */
  listening(): Map<string, number> {
    return this.northbound?.devicePorts() ?? new Map<string, number>();
  }

  /**
   * Opens, moves or closes per-device northbound listeners to match the inventory.
   * `starting`: an inventory file port that cannot be bound stops start-up.
   */
  sync(starting: boolean): Promise<void> {
    const run = this.syncing.then(() => this.syncOnce(starting));
    this.syncing = run.catch(() => undefined);
    return run;
  }

  private async syncOnce(starting: boolean): Promise<void> {
    const northbound = this.northbound;
    if (!northbound) return;
    const inventory = this.deps.inventory();
    if (this.assignments) this.assigned = await this.assignments.assign(inventory);
    if (this.northbound !== northbound) return;
    const current = northbound.devicePorts();
    for (const [id, port] of current) {
      const wanted = this.wantedPort(id);
      if (wanted !== port) await northbound.unlistenDevice(id);
    }
    const open = northbound.devicePorts();
    for (const entry of inventory.devices.values()) {
      const wanted = this.wantedPort(entry.id);
      if (wanted === undefined || open.has(entry.id)) continue;
      if (this.northbound !== northbound) return;
      try {
        const port = await northbound.listen(this.deps.config.northbound.host, wanted, { kind: 'device', deviceId: entry.id });
        if (this.northbound !== northbound) {
          await northbound.unlistenDevice(entry.id); // closed meanwhile
          return;
        }
        this.deps.logger.info({ device: entry.id, port, assigned: entry.port === undefined }, 'device port listening');
      } catch (err) {
        // An inventory file port that cannot be bound stops start-up; an assigned or
        // approved one is logged (a saved approval never stops the gateway).
        if (starting && entry.port !== undefined && !this.deps.isApproved(entry.id)) throw err;
        this.deps.logger.error({ device: entry.id, port: wanted }, describeError(err));
      }
    }
  }

  /** The northbound port a device should have: its own `port:`, else one from portRange. */
  private wantedPort(id: string): number | undefined {
    return this.deps.inventory().get(id)?.port ?? this.assigned.get(id);
  }

  /**
   * What a port is to the gateway itself (one of its listeners, or inside northbound.portRange),
   * or undefined: such a port is never given to one device.
   */
  reservedPort(port: number): string | undefined {
    const { config } = this.deps;
    const bound = this.deps.ownPorts();
    const own: Array<[string, number]> = [
      ['the SSH call-home port', config.callhome.ssh.port],
      ['the SSH call-home port', bound.callhomeSsh],
      ['the northbound shared port', config.northbound.port],
      ['the northbound shared port', bound.northbound],
      ['the HTTP port', config.http.port],
      ['the HTTP port', bound.http],
      ...(config.callhome.tls.enabled
        ? ([
            ['the TLS call-home port', config.callhome.tls.port],
            ['the TLS call-home port', bound.callhomeTls],
          ] as Array<[string, number]>)
        : []),
    ];
    const hit = own.find(([, p]) => p !== 0 && p === port);
    if (hit) return `${hit[0]} of this gateway`;
    const range = parsePortRange(config.northbound.portRange);
    if (range && port >= range[0] && port <= range[1]) return `inside northbound.portRange (${config.northbound.portRange}), where ports are assigned`;
    return undefined;
  }
}
