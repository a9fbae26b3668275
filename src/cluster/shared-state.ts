// The state the replicas share through Redis in cluster mode: approvals and rejections, the
// pending list and the ports assigned from northbound.portRange (src/cluster/shared-*.ts).
// Reads use copies held in memory; this module keeps them fresh: it re-reads on every change
// event (pub/sub), and whenever Redis comes back. Events: 'approvals' when the decisions
// changed (the inventory is reloaded), 'ports' when assignments may have (ports re-synced).
//
// Redis without persistence comes back empty. A random generation id written into an empty
// Redis tells: when it differs from the one a replica last saw, the replica first adds back
// what it holds (never overriding what another replica restored already), then re-reads.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { ApprovalStore } from '../onboarding/approvals.js';
import type { ClusterRedis } from './redis.js';
import { SharedApprovals } from './shared-approvals.js';
import { SharedPendingDevices } from './shared-pending.js';
import { SharedPorts } from './shared-ports.js';
import { STATE_KEYS as K, type StateChange } from './state-keys.js';

export class SharedState extends EventEmitter {
  private approvals: SharedApprovals | undefined;
  private ports: SharedPorts | undefined;
  private generation: string | undefined;
  /** Refreshes run one at a time; a request during one runs once more after it. */
  private running: Promise<void> | undefined;
  private again = false;
  private readonly onReady = () => this.refresh('ready');
  private readonly onMessage = (message: string) => this.refresh(message as StateChange);
  private started = false;

  constructor(
    readonly redis: ClusterRedis,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** The ApprovalStore's copy becomes Redis's; returns what writes decisions there. */
  bindApprovals(store: ApprovalStore): SharedApprovals {
    this.approvals = new SharedApprovals(this.redis, store);
    return this.approvals;
  }

  bindPending(isRejected: (fingerprint: string) => boolean): SharedPendingDevices {
    return new SharedPendingDevices(isRejected, this.redis, this.logger);
  }

  bindPorts(range: [number, number]): SharedPorts {
    this.ports = new SharedPorts(this.redis, range, this.logger);
    return this.ports;
  }

  /** Subscribes to changes and reads the state (Redis must be connected). */
  async start(): Promise<void> {
    await this.redis.subscriber.subscribe(K.changes, this.onMessage);
    await this.reconcile();
    this.started = true;
    this.redis.on('ready', this.onReady);
    // The subscription is renewed on its own connection: changes missed meanwhile are read then.
    this.redis.subscriber.on('ready', this.onReady);
  }

  async close(): Promise<void> {
    this.redis.off('ready', this.onReady);
    this.redis.subscriber.off('ready', this.onReady);
    this.started = false;
    await this.redis.subscriber.unsubscribe(K.changes, this.onMessage).catch(() => undefined);
    await this.running;
  }

  private refresh(cause: StateChange | 'ready'): void {
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const changed = await this.reconcile();
          // A changed inventory re-syncs the ports by itself.
          if (changed) this.emit('approvals');
          else if (cause !== 'approvals') this.emit('ports');
        } catch (err) {
          // Redis went away again: the copies stay in force; its next 'ready' refreshes.
          this.logger.warn({ err: (err as Error).message }, 'shared state not re-read from Redis: the last copy stays in force');
        }
      } while (this.again);
      this.running = undefined;
    })();
  }

  /** Restores after a loss, then re-reads the decisions; true when they changed. */
  private async reconcile(): Promise<boolean> {
    const client = this.redis.client;
    let generation = await client.get(K.generation);
    if (generation === null) {
      await client.set(K.generation, randomUUID(), { NX: true });
      generation = await client.get(K.generation);
    }
    if (this.generation !== undefined && generation !== this.generation) {
      const approvals = (await this.approvals?.restore()) ?? 0;
      const ports = (await this.ports?.restore()) ?? 0;
      this.logger.warn({ approvals, ports }, 'Redis lost the shared state (restarted empty): added back the approvals, rejections and device ports held here');
    }
    this.generation = generation ?? undefined;
    return (await this.approvals?.reload()) ?? false;
  }
}
