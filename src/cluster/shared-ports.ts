// Port assignments from northbound.portRange shared by the replicas (cluster mode): every
// replica listens on a device's port, so they must all agree on it, and no two devices may
// ever get the same one. Each round reads the assignments with their version, decides with
// the same rules as standalone (assignPorts), and writes back with a compare-and-set on the
// version (Lua): a round that lost the race to another replica starts again on what won.
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../log.js';
import { assignPorts, logAssignment } from '../northbound/port-assignments.js';
import type { ClusterRedis } from './redis.js';
import { STATE_KEYS as K } from './state-keys.js';

// KEYS: ports, portsVersion. ARGV: expected version, channel, then id, port pairs.
const CAS = `
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return -1 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'ports')
return v`;

// After Redis lost the state: adds an id's port unless the id or the port is already there.
// ARGV: channel, then id, port pairs.
const RESTORE = `
local used = {}
for _, p in ipairs(redis.call('HVALS', KEYS[1])) do used[p] = true end
local added = 0
for i = 2, #ARGV, 2 do
  if not used[ARGV[i + 1]] and redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    used[ARGV[i + 1]] = true
    added = added + 1
  end
end
if added > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', ARGV[1], 'ports')
end
return added`;

const MAX_ROUNDS = 50;

export class SharedPorts {
  /** The last assignments read or written: kept while Redis is unreachable. */
  private copy = new Map<string, number>();

  constructor(
    private readonly redis: ClusterRedis,
    private readonly range: [number, number],
    private readonly logger: Logger,
  ) {}

  /**
   * The port of every inventory device without its own `port:`, agreed with the other
   * replicas. While Redis is unreachable, devices keep the ports they had and new ones wait.
   */
  async assign(inventory: Inventory): Promise<Map<string, number>> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let stored: Map<string, number>;
      let version: number;
      try {
        this.redis.assertUp('device ports not assigned');
        [stored, version] = await this.read();
      } catch (err) {
        return this.offline(inventory, (err as Error).message);
      }
      const outcome = assignPorts(stored, inventory, this.range);
      if (!outcome.changed) {
        this.copy = stored;
        return outcome.result;
      }
      const pairs = [...outcome.byId].flatMap(([id, port]) => [id, String(port)]);
      let written: unknown;
      try {
        written = await this.redis.client.eval(CAS, { keys: [K.ports, K.portsVersion], arguments: [String(version), K.changes, ...pairs] });
      } catch (err) {
        return this.offline(inventory, (err as Error).message);
      }
      if (Number(written) >= 0) {
        logAssignment(outcome, this.range, this.logger);
        this.copy = outcome.byId;
        return outcome.result;
      }
    }
    return this.offline(inventory, `no agreement with the other replicas after ${MAX_ROUNDS} rounds`);
  }

  /** Adds the assignments this replica holds to a Redis that lost them; resolves how many were added. */
  async restore(): Promise<number> {
    const pairs = [...this.copy].flatMap(([id, port]) => [id, String(port)]);
    return Number(await this.redis.client.eval(RESTORE, { keys: [K.ports, K.portsVersion], arguments: [K.changes, ...pairs] }));
  }

  private async read(): Promise<[Map<string, number>, number]> {
    const [hash, version] = (await this.redis.client.multi().hGetAll(K.ports).get(K.portsVersion).exec()) as unknown as [Record<string, string>, string | null];
    const [first, last] = this.range;
    const stored = new Map<string, number>();
    for (const [id, text] of Object.entries(hash)) {
      const port = Number(text);
      // A port outside a changed range is given up; its device is assigned anew.
      if (Number.isInteger(port) && port >= first && port <= last) stored.set(id, port);
    }
    return [stored, Number(version ?? 0)];
  }

  /** Without Redis: only ports already agreed on (a new one could clash with another replica's choice). */
  private offline(inventory: Inventory, reason: string): Map<string, number> {
    const outcome = assignPorts(this.copy, inventory, this.range);
    const result = new Map([...outcome.result].filter(([id, port]) => this.copy.get(id) === port));
    const waiting = [...outcome.result.keys()].filter((id) => !result.has(id));
    if (waiting.length > 0) this.logger.warn({ devices: waiting.join(','), err: reason }, "device ports not assigned until the cluster's Redis is back");
    return result;
  }
}
