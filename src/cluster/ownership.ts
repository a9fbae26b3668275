// Device ownership in Redis (docs/CLUSTER.md): one hash field per device names its owner
// replica and epoch, and the owner's lease (one key per replica, renewed every leaseTtl/3)
// decides whether that record counts. Devices cost no renewals: a replica that dies stops
// owning all of its devices at once when its lease expires.
import { EventEmitter } from 'node:events';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { KEY_PREFIX, type ClusterRedis, type RedisClient } from './redis.js';
import { CLAIM, LOOKUP, OWNERS, RECLAIM, RELEASE, RELEASE_MANY, REPLICAS, SWEEP, runScript } from './scripts.js';
import type { DeviceOwner, OwnerDetails, Ownership, ReplicaInfo } from './types.js';

export const KEYS = {
  /** Hash: device id → owner record (JSON: epoch, replica, peer, since, transport, remoteAddress). */
  owners: `${KEY_PREFIX}owners`,
  /** Hash: device id → the highest epoch ever given to it. */
  epochs: `${KEY_PREFIX}epochs`,
  /** Set of replica ids that had a lease; pruned as leases expire. */
  replicas: `${KEY_PREFIX}replicas`,
  /** String with PX = leaseTtl: `chgw:replica:<id>` → {peer, since, devices}. */
  lease: `${KEY_PREFIX}replica:`,
  /** Pub/sub channel of claims: one message (the owner record with deviceId) per claim. */
  events: `${KEY_PREFIX}events`,
} as const;

/** Every ownership script takes milliseconds; three seconds without an answer is an outage. */
const COMMAND_TIMEOUT_MS = 3000;

interface Held {
  epoch: number;
  /** The owner record without its epoch (what a re-registration writes again). */
  record: string;
  /** false: the claim never reached Redis (epoch = connection time), or its reply was lost. */
  registered: boolean;
}

export interface OwnershipOptions {
  replicaId: string;
  /** host:port other replicas dial (cluster.peer.advertise). */
  peer: string;
  /** Seconds (cluster.leaseTtl). */
  leaseTtl: number;
  logger: Logger;
}

export class RedisOwnership extends EventEmitter implements Ownership {
  readonly replicaId: string;
  private readonly held = new Map<string, Held>();
  /** Claims of this replica in flight, with the newest claim of another replica seen meanwhile. */
  private readonly claiming = new Map<string, DeviceOwner | undefined>();
  /** Releases that could not reach Redis: retried when it is back. */
  private readonly unreleased = new Map<string, { epoch: number; any: boolean }>();
  private readonly since = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  private reRegistering: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Commands with a deadline: a Redis that accepts but never answers (frozen) fails too. */
  private readonly commands: RedisClient;

  constructor(
    private readonly redis: ClusterRedis,
    private readonly options: OwnershipOptions,
  ) {
    super();
    this.setMaxListeners(0); // one 'owned' listener per client waiting for a device
    this.replicaId = options.replicaId;
    this.commands = redis.client.withCommandOptions({ timeout: COMMAND_TIMEOUT_MS }) as unknown as RedisClient;
  }

  /** Subscribes to claims, clears what an earlier run under this id left, and takes the lease. */
  async start(): Promise<void> {
    await this.redis.subscriber.subscribe(KEYS.events, (message) => this.onClaim(message));
    await this.sweep(this.replicaId, true);
    await this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat().catch(() => undefined), (this.options.leaseTtl * 1000) / 3);
    this.timer.unref();
  }

  /** The number of devices this replica holds (registered or waiting for Redis). */
  get heldCount(): number {
    return this.held.size;
  }

  async claim(deviceId: string, since: Date, details: OwnerDetails = {}): Promise<number> {
    const record = JSON.stringify({ replica: this.replicaId, peer: this.options.peer, since: since.toISOString(), ...details });
    this.claiming.set(deviceId, undefined);
    try {
      const epoch = Number(await this.run(`device ${deviceId}: cannot register its owner`, CLAIM, [KEYS.owners, KEYS.epochs], [deviceId, record, KEYS.events]));
      this.held.set(deviceId, { epoch, record, registered: true });
      const newer = this.claiming.get(deviceId);
      if (newer && newer.epoch > epoch) this.supersede(deviceId, newer);
      return epoch;
    } catch (err) {
      // Served here all the same; registered by compare-and-set when Redis is back.
      this.held.set(deviceId, { epoch: since.getTime(), record, registered: false });
      throw err;
    } finally {
      this.claiming.delete(deviceId);
    }
  }

  async release(deviceId: string, epoch: number): Promise<void> {
    const held = this.held.get(deviceId);
    const mine = held?.epoch === epoch;
    if (mine) this.held.delete(deviceId);
    if (held && !mine) return; // a newer local connection holds it now: its record stands
    await this.releaseRecord(deviceId, epoch, mine && !held.registered);
  }

  private async releaseRecord(deviceId: string, epoch: number, any: boolean): Promise<void> {
    try {
      await this.run(`device ${deviceId}: cannot release it`, RELEASE, [KEYS.owners], [deviceId, this.replicaId, String(epoch), any ? 'any' : '']);
    } catch (err) {
      this.unreleased.set(deviceId, { epoch, any });
      throw err;
    }
  }

  async lookup(deviceId: string): Promise<DeviceOwner | undefined> {
    const value = await this.run(`device ${deviceId}: cannot look up its owner`, LOOKUP, [KEYS.owners], [deviceId, KEYS.lease]);
    return typeof value === 'string' ? ownerOf(deviceId, value) : undefined;
  }

  async owners(): Promise<Map<string, DeviceOwner>> {
    const flat = (await this.run('cannot list device owners', OWNERS, [KEYS.owners], [KEYS.lease])) as string[];
    const out = new Map<string, DeviceOwner>();
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i]!, ownerOf(flat[i]!, flat[i + 1]!));
    return out;
  }

  async replicas(): Promise<ReplicaInfo[]> {
    return (await this.replicaScript('')).live;
  }

  /**
   * Renews the lease (with this replica's device count) and lists the live replicas. A lease
   * found expired (this process stalled, or was cut off) means other replicas may have swept
   * its records: re-register everything held.
   */
  async heartbeat(): Promise<ReplicaInfo[]> {
    const value = JSON.stringify({ peer: this.options.peer, since: this.since, devices: this.held.size });
    const { live, lapsed } = await this.replicaScript(value);
    this.emit('replicas', live);
    if (lapsed && this.timer && this.held.size > 0) void this.reRegister().catch(() => undefined);
    return live;
  }

  private async replicaScript(leaseValue: string): Promise<{ live: ReplicaInfo[]; lapsed: boolean }> {
    const ttl = String(this.options.leaseTtl * 1000);
    const [flat, gone, lapsed] = (await this.run('cannot list the replicas', REPLICAS, [KEYS.replicas], [KEYS.lease, this.replicaId, leaseValue, ttl])) as [
      string[],
      string[],
      number,
    ];
    const live: ReplicaInfo[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const { peer, since, devices } = JSON.parse(flat[i + 1]!) as Omit<ReplicaInfo, 'id'>;
      live.push({ id: flat[i]!, peer, devices, since });
    }
    live.sort((a, b) => a.id.localeCompare(b.id));
    // Whoever sees a lease gone first clears that replica's records (lookups ignore them already).
    for (const id of gone) {
      this.options.logger.warn({ replica: id }, 'replica lease expired: its devices are no longer owned by it');
      void this.sweep(id, false).catch(() => undefined);
    }
    return { live, lapsed: lapsed === 1 };
  }

  /**
   * After an outage (or a lapsed lease): renew the lease, finish the releases that failed,
   * and register again every device held, each by compare-and-set at the epoch it had. A
   * device another replica claimed meanwhile is superseded here. Runs one at a time.
   */
  reRegister(): Promise<void> {
    if (this.reRegistering) {
      this.again = true;
      return this.reRegistering;
    }
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        await this.heartbeat();
        for (const [id, { epoch, any }] of [...this.unreleased]) {
          this.unreleased.delete(id);
          if (!this.held.has(id)) await this.releaseRecord(id, epoch, any).catch(() => undefined);
        }
        const entries = [...this.held];
        let registered = 0;
        let superseded = 0;
        // Concurrent calls are pipelined by the client: a few round trips for thousands of devices.
        for (let i = 0; i < entries.length; i += 500) {
          const results = await Promise.all(entries.slice(i, i + 500).map(([id, held]) => this.reclaim(id, held)));
          registered += results.filter((r) => r).length;
          superseded += results.filter((r) => !r).length;
        }
        if (entries.length > 0) this.options.logger.info({ devices: registered, superseded }, 'registered the devices held here again');
      } while (this.again && !this.closed);
    };
    this.reRegistering = run().finally(() => (this.reRegistering = undefined));
    return this.reRegistering;
  }

  private async reclaim(deviceId: string, held: Held): Promise<boolean> {
    const [ok, value] = (await this.run(
      `device ${deviceId}: cannot register its owner`,
      RECLAIM,
      [KEYS.owners, KEYS.epochs],
      [deviceId, held.record, KEYS.events, this.replicaId, String(held.epoch), KEYS.lease],
    )) as [number, string | number];
    if (this.held.get(deviceId) !== held) return true; // released or claimed anew meanwhile
    if (ok === 1) {
      held.epoch = Number(value);
      held.registered = true;
      return true;
    }
    this.supersede(deviceId, typeof value === 'string' && value !== '' ? ownerOf(deviceId, value) : undefined);
    return false;
  }

  /** Deletes the records naming `replica` (all of them at start, when it is this one). */
  private async sweep(replica: string, force: boolean): Promise<void> {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, n] = (await this.run('cannot sweep owner records', SWEEP, [KEYS.owners], [cursor, replica, KEYS.lease, force ? '1' : ''])) as [string, number];
      cursor = next;
      deleted += n;
    } while (cursor !== '0');
    if (deleted > 0) this.options.logger.info({ replica, devices: deleted }, 'removed the owner records of a replica without a lease');
  }

  private onClaim(message: string): void {
    let owner: DeviceOwner;
    try {
      owner = JSON.parse(message) as DeviceOwner;
    } catch {
      return;
    }
    this.emit('owned', owner);
    if (owner.replica === this.replicaId) return;
    const id = owner.deviceId;
    if (this.claiming.has(id)) {
      const seen = this.claiming.get(id);
      if (!seen || seen.epoch < owner.epoch) this.claiming.set(id, owner);
    }
    // A claim of ours in flight decides when it lands (its epoch against this one).
    const held = this.held.get(id);
    if (held && held.epoch < owner.epoch && !this.claiming.has(id)) this.supersede(id, owner);
  }

  private supersede(deviceId: string, by: DeviceOwner | undefined): void {
    this.held.delete(deviceId);
    this.emit('superseded', deviceId, by);
  }

  /** Runs a script, failing fast with GW_ERR_CLUSTER_UNAVAILABLE when Redis is unreachable. */
  private async run(what: string, script: string, keys: string[], args: string[]): Promise<unknown> {
    this.redis.assertUp(what);
    try {
      return await runScript(this.commands, script, keys, args);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('GW_ERR_CLUSTER_UNAVAILABLE', `${what}: ${(err as Error).message}`);
    }
  }

  /** Stops renewing the lease (as a crash would): records stay until it expires. */
  stop(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Graceful leave: releases every device held and drops the lease, so others take over at once. */
  async close(): Promise<void> {
    this.stop();
    if (!this.redis.up) return;
    const entries = [...this.held];
    this.held.clear();
    for (let i = 0; i < entries.length; i += 1000) {
      const args = entries.slice(i, i + 1000).flatMap(([id, held]) => [id, held.registered ? String(held.epoch) : 'any']);
      await this.run('cannot release the devices held here', RELEASE_MANY, [KEYS.owners], [this.replicaId, ...args]).catch(() => undefined);
    }
    await this.redis.client.del(KEYS.lease + this.replicaId).catch(() => undefined);
  }
}

function ownerOf(deviceId: string, value: string): DeviceOwner {
  return { deviceId, ...(JSON.parse(value) as Omit<DeviceOwner, 'deviceId'>) };
}
