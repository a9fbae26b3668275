// What the rest of the gateway knows of the cluster: who owns which device, which replicas
// are alive, and how to reach a device owned elsewhere. Standalone (no cluster.redis.url)
// there is no Cluster at all and the gateway behaves as one process always did.
import type { EventEmitter } from 'node:events';

/** A live replica, as GET /api/replicas lists it. */
export interface ReplicaInfo {
  id: string;
  /** host:port other replicas dial for forwarded sessions. */
  peer: string;
  /** Devices it owns now. */
  devices: number;
  /** When it joined (ISO 8601). */
  since: string;
}

/** A device's owner record: the replica holding its connection, fenced by an epoch. */
export interface DeviceOwner {
  deviceId: string;
  replica: string;
  peer: string;
  /** Rises with every claim of this device; a stale owner's writes with a lower epoch are refused. */
  epoch: number;
  /** When the owner's connection was registered (ISO 8601). */
  since: string;
  transport?: 'ssh' | 'tls';
  /** The device's address as the owner sees it. */
  remoteAddress?: string;
}

/** What a claim records besides the owner, for the cluster-wide /api/devices. */
export interface OwnerDetails {
  transport?: 'ssh' | 'tls';
  remoteAddress?: string;
}

/**
 * Ownership of devices across replicas (cluster/ownership.ts). Events:
 * - 'owned' (owner: DeviceOwner): any replica (this one too) claimed a device: wakes clients
 *   waiting for it (northbound.waitForDevice across replicas).
 * - 'superseded' (deviceId: string, by: DeviceOwner | undefined): another replica claimed a
 *   device this one holds (by: its record), or a re-registration after an outage found a
 *   newer claim (by: undefined when that owner has released it since): the local connection
 *   must close (GW_ERR_SUPERSEDED) within 2 s.
 * - 'replicas' (live: ReplicaInfo[]): the live replicas, after every lease renewal.
 */
export interface Ownership extends EventEmitter {
  readonly replicaId: string;
  /**
   * Records this replica as the owner with a new, higher epoch; resolves the epoch. While
   * Redis is unreachable it rejects (GW_ERR_CLUSTER_UNAVAILABLE) but keeps the device as
   * held at epoch `since.getTime()` (what release must then name): it is registered
   * (compare-and-set) as soon as Redis is back.
   */
  claim(deviceId: string, since: Date, details?: OwnerDetails): Promise<number>;
  /** Deletes the record only if it still names this replica at this epoch (compare-and-set). */
  release(deviceId: string, epoch: number): Promise<void>;
  /**
   * The device's live owner, or undefined (no record, or its replica's lease expired).
   * Rejects at once with GatewayError('GW_ERR_CLUSTER_UNAVAILABLE') while Redis is unreachable.
   */
  lookup(deviceId: string): Promise<DeviceOwner | undefined>;
  /** Every live owner record, for the cluster-wide /api/devices. */
  owners(): Promise<Map<string, DeviceOwner>>;
  /** The live replicas (lease not expired), for /api/replicas and callhome_cluster_replicas. */
  replicas(): Promise<ReplicaInfo[]>;
}
