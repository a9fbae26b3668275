// Cluster mode's composition (docs/CLUSTER.md): ownership on the replica's one Redis
// connection (shared with the replicated state), and its wiring to the device registry. A device is claimed once logged in with its hello read,
// released when its connection ends, registered again after a Redis outage, and closed
// here when another replica takes it over. Standalone there is no Cluster at all.
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/schema.js';
import { GatewayError, describeError, reasonLabel } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { LiveDevice } from '../device/live.js';
import type { DeviceView } from '../http/server.js';
import { ClusterRedis } from './redis.js';
import { RedisOwnership } from './ownership.js';
import type { DeviceOwner, ReplicaInfo } from './types.js';

/** The longest a graceful leave waits for Redis. */
const LEAVE_TIMEOUT_MS = 5000;

export interface ClusterDeps {
  config: Config;
  logger: Logger;
  registry: DeviceRegistry;
  metrics: GatewayMetrics;
  /** The replica's Redis connection, connected; its owner closes it. */
  redis: ClusterRedis;
}

/** host:port other replicas dial: cluster.peer.advertise, else the first non-internal IPv4. */
export function advertisedPeer(config: Pick<Config, 'cluster'>): string {
  const { advertise, port } = config.cluster.peer;
  if (advertise !== '') return advertise;
  const ipv4 = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  return `${ipv4?.address ?? '127.0.0.1'}:${port}`;
}

/** Managers pin the northbound host key: every replica must present the same one, from a file. */
export function requireSharedHostKey(config: Config): void {
  const file = config.northbound.hostKeyFile;
  if (!existsSync(file)) {
    throw new GatewayError('GW_ERR_CONFIG', `cluster mode needs northbound.hostKeyFile, one host key for every replica (e.g. from a Secret): ${file} does not exist`);
  }
}

export class Cluster {
  readonly redis: ClusterRedis;
  readonly ownership: RedisOwnership;
  /** Each local connection's claim: resolves the epoch its release must name. */
  private readonly claims = new Map<LiveDevice, Promise<number>>();
  private readonly logger: Logger;

  private constructor(private readonly deps: ClusterDeps) {
    const { config } = deps;
    this.logger = deps.logger.child({ component: 'cluster' });
    this.redis = deps.redis;
    this.ownership = new RedisOwnership(this.redis, {
      replicaId: config.cluster.replicaId,
      peer: advertisedPeer(config),
      leaseTtl: config.cluster.leaseTtl,
      logger: this.logger,
    });
  }

  /** Joins the cluster on a connected Redis; rejects with a one-line reason. */
  static async start(deps: ClusterDeps): Promise<Cluster> {
    const cluster = new Cluster(deps);
    try {
      await cluster.ownership.start();
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG', `cannot join the cluster: ${describeError(err)}`);
    }
    cluster.wire();
    cluster.logger.info({ replica: deps.config.cluster.replicaId, leaseTtl: deps.config.cluster.leaseTtl }, 'joined the cluster');
    return cluster;
  }

  private wire(): void {
    const { registry, metrics } = this.deps;
    const { ownership, logger } = this;
    registry.on('added', (session: LiveDevice) => {
      const since = session.connectedAt ?? new Date();
      const claim = ownership.claim(session.deviceId, since, { transport: session.transport, remoteAddress: session.remoteAddress }).catch((err: unknown) => {
        logger.warn(
          { device: session.deviceId, ...reasonOf(err), err: describeError(err) },
          'device served here but not registered in the cluster: registering it when Redis is back',
        );
        return since.getTime(); // the epoch Ownership holds it at until then
      });
      this.claims.set(session, claim);
    });
    registry.on('removed', (session: LiveDevice) => {
      const claim = this.claims.get(session);
      this.claims.delete(session);
      void claim
        ?.then((epoch) => ownership.release(session.deviceId, epoch))
        .catch((err: unknown) => logger.debug({ device: session.deviceId, err: describeError(err) }, 'device release deferred until Redis is back'));
    });
    ownership.on('superseded', (deviceId: string, by: DeviceOwner | undefined) => {
      const where = by ? `replica ${by.replica}` : 'another replica';
      logger.info(
        { device: deviceId, ...(by ? { replica: by.replica } : {}), code: 'GW_ERR_SUPERSEDED', reason: 'superseded' },
        'device connected to another replica: closing the connection held here',
      );
      registry.kill(deviceId, new GatewayError('GW_ERR_SUPERSEDED', `device ${deviceId} connected to ${where} since: this older connection is closed`));
    });
    ownership.on('replicas', (live: ReplicaInfo[]) => metrics.clusterReplicas.set(live.length));
    // After an outage: register again what is held. Also once the subscriber is back: a
    // claim published while it was away is found by the compare-and-set instead.
    const reRegister = () =>
      void ownership
        .reRegister()
        .catch((err: unknown) => logger.warn({ ...reasonOf(err), err: describeError(err) }, 'registering the devices held here again failed: retrying when Redis is back'));
    this.redis.on('ready', reRegister);
    this.redis.on('subscribed', reRegister);
  }

  /** /api/devices cluster-wide: devices connected on other replicas show as connected there. */
  async devices(local: DeviceView[]): Promise<DeviceView[]> {
    const me = this.deps.config.cluster.replicaId;
    let owners = new Map<string, DeviceOwner>();
    try {
      owners = await this.ownership.owners();
    } catch {
      // Redis unreachable: what this replica holds is still known.
    }
    return local.map((view) => {
      if (this.deps.registry.get(view.id)) return { ...view, replica: me };
      const owner = owners.get(view.id);
      if (!owner || owner.replica === me) return { ...view, replica: null };
      return {
        ...view,
        state: 'connected',
        transport: owner.transport ?? view.transport,
        remoteAddress: owner.remoteAddress ?? null,
        connectedAt: owner.since,
        replica: owner.replica,
      };
    });
  }

  replicas(): Promise<ReplicaInfo[]> {
    return this.ownership.replicas();
  }

  /** GET /api/replicas without cluster mode: this one replica. */
  static standalone(config: Config, registry: DeviceRegistry, since: Date): ReplicaInfo[] {
    return [{ id: config.cluster.replicaId, peer: '', devices: registry.size, since: since.toISOString() }];
  }

  /** Graceful leave: release every device held and the lease, so devices land elsewhere at once. */
  async close(): Promise<void> {
    const leave = (async () => {
      await Promise.allSettled(this.claims.values());
      await this.ownership.close().catch(() => undefined);
    })();
    // A Redis that stopped answering must not hold the shutdown: its leases expire anyway.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([leave, new Promise((resolve) => (timer = setTimeout(resolve, LEAVE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.ownership.stop();
  }

  destroy(): void {
    this.ownership.stop();
  }
}

function reasonOf(err: unknown): { code?: string; reason?: string } {
  return err instanceof GatewayError ? { code: err.code, reason: reasonLabel(err.code) } : {};
}
