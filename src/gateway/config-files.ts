// The two files the gateway re-reads while running: the inventory (merged with the
// operator's approvals) and the users. A file that fails validation on reload leaves the
// last good one in force; a change on disk reloads it (polled, see state/file-watch.ts).
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import { Users, loadUsers } from '../northbound/auth.js';
import { FileWatcher } from '../state/file-watch.js';

export interface ConfigFilesDeps {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  /** Reads the inventory file merged with the approvals (onboarding/service.ts). */
  loadInventory(): Inventory;
  /** After a reload took effect: what the rest of the gateway does with the new inventory. */
  inventoryChanged(next: Inventory, previous: Inventory): Promise<void>;
  /** After a users reload took effect: ends the sessions of users gone; returns how many. */
  usersChanged(users: Users): number;
}

export class ConfigFiles {
  private inventoryValue = Inventory.empty();
  private usersValue = Users.empty();
  private readonly watcher = new FileWatcher();

  constructor(private readonly deps: ConfigFilesDeps) {}

  get inventory(): Inventory {
    return this.inventoryValue;
  }
  get users(): Users {
    return this.usersValue;
  }

  /** The first load at start-up: a bad file throws. */
  load(): void {
    this.inventoryValue = this.deps.loadInventory();
    this.usersValue = loadUsers(this.deps.config.users.file);
  }

  watch(): void {
    // A watcher has no one to hand a rejection to: applying the inventory can still fail.
    this.watcher.watch(this.deps.config.inventory.file, () => {
      this.reloadInventory().catch((err: unknown) => this.deps.logger.error({ reason: 'GW_ERR_INVENTORY' }, `inventory reload failed: ${describeError(err)}`));
    });
    this.watcher.watch(this.deps.config.users.file, () => void this.reloadUsers());
  }

  stopWatching(): void {
    this.watcher.stop();
  }

  /** Re-reads the inventory; a file that fails validation leaves the last good one in force. */
  async reloadInventory(): Promise<boolean> {
    let next: Inventory;
    try {
      next = this.deps.loadInventory();
    } catch (err) {
      this.deps.metrics.configReloadFailuresTotal.inc({ file: 'inventory' });
      this.deps.logger.error({ reason: 'GW_ERR_INVENTORY' }, `inventory not reloaded, the previous one stays in force: ${describeError(err)}`);
      return false;
    }
    const previous = this.inventoryValue;
    this.inventoryValue = next;
    await this.deps.inventoryChanged(next, previous);
    this.deps.logger.info({ devices: next.devices.size }, 'inventory reloaded');
    return true;
  }

  async reloadUsers(): Promise<boolean> {
    try {
      this.usersValue = loadUsers(this.deps.config.users.file);
    } catch (err) {
      this.deps.metrics.configReloadFailuresTotal.inc({ file: 'users' });
      this.deps.logger.error({ reason: 'GW_ERR_USERS' }, `users not reloaded, the previous ones stay in force: ${describeError(err)}`);
      return false;
    }
    const ended = this.deps.usersChanged(this.usersValue);
    this.deps.logger.info({ users: this.usersValue.size, sessionsEnded: ended }, 'users reloaded');
    return true;
  }
}
