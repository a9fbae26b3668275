// The cluster's one connection to Redis (node-redis), plus a second one for subscriptions
// (a subscribed connection can run nothing else). Commands fail at once while Redis is
// unreachable (no offline queue): a lookup of a remote device must fail fast with a clear
// reason, not wait; the client reconnects by itself with a capped backoff, and 'ready'
// after a reconnect is the cue to re-register what this replica holds.
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { createClient, type RedisClientType } from 'redis';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';

export type RedisClient = RedisClientType;

/** Key prefix of everything the gateway stores in Redis (one Redis may serve several clusters: set db or prefix). */
/** The longest a graceful close waits for Redis to answer. */
const CLOSE_TIMEOUT_MS = 2000;

export const KEY_PREFIX = 'chgw:';

/**
 * Emits 'ready' on every (re)connection and 'down' (reason) when the connection is lost;
 * 'subscribed' whenever the subscriber connection is (again) subscribed.
 * `up` says whether commands can run now.
 */
export class ClusterRedis extends EventEmitter {
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  private upValue = false;
  private closed = false;
  private lastError = '';

  constructor(
    config: Pick<Config, 'cluster'>,
    private readonly logger: Logger,
  ) {
    super();
    const { url, passwordFile } = config.cluster.redis;
    let password: string | undefined;
    if (passwordFile !== '') {
      try {
        password = readFileSync(passwordFile, 'utf8').trim();
      } catch (err) {
        throw new GatewayError('GW_ERR_CONFIG', `cannot read cluster.redis.passwordFile ${passwordFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    }
    const options = {
      url,
      ...(password ? { password } : {}),
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2000,
        // 100 ms, 200 ms … capped at 2 s: back within seconds of Redis returning.
        reconnectStrategy: (retries: number) => Math.min(2000, 100 * 2 ** Math.min(retries, 5)),
      },
    };
    this.client = createClient(options) as RedisClient;
    this.subscriber = this.client.duplicate() as RedisClient;
    for (const [name, c] of [
      ['commands', this.client],
      ['subscriptions', this.subscriber],
    ] as const) {
      c.on('error', (err: Error) => {
        // node-redis repeats the error on every retry: log each distinct reason once.
        const reason = err.message || String(err);
        if (reason !== this.lastError) logger.warn({ connection: name, code: 'GW_ERR_CLUSTER_UNAVAILABLE', reason: 'cluster_unavailable', err: reason }, 'Redis connection error');
        this.lastError = reason;
      });
    }
    this.client.on('ready', () => {
      const wasUp = this.upValue;
      this.upValue = true;
      this.lastError = '';
      logger.info({ url }, wasUp ? 'Redis ready' : 'Redis connected');
      this.emit('ready');
    });
    // node-redis subscribes again before 'ready': claims published from here on reach us.
    this.subscriber.on('ready', () => this.emit('subscribed'));
    this.client.on('end', () => this.markDown('connection closed'));
    this.client.on('reconnecting', () => this.markDown('reconnecting'));
  }

  private markDown(reason: string): void {
    if (!this.upValue || this.closed) return;
    this.upValue = false;
    this.logger.warn(
      { code: 'GW_ERR_CLUSTER_UNAVAILABLE', reason: 'cluster_unavailable', err: reason },
      'Redis unreachable: serving the devices and managers held here; remote lookups fail until it is back',
    );
    this.emit('down', reason);
  }

  get up(): boolean {
    return this.upValue;
  }

  /**
   * Connects both connections; rejects with a one-line reason when Redis cannot be reached
   * within `deadlineMs` at start (the client would retry for ever).
   */
  async connect(deadlineMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${deadlineMs / 1000} s${this.lastError ? ` (${this.lastError})` : ''}`)), deadlineMs);
    });
    try {
      await Promise.race([Promise.all([this.client.connect(), this.subscriber.connect()]), deadline]);
    } catch (err) {
      this.destroy();
      throw new GatewayError('GW_ERR_CLUSTER_UNAVAILABLE', `cannot reach Redis at ${this.client.options?.url ?? 'cluster.redis.url'}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fails fast with one clear reason when Redis is down, instead of queueing. */
  assertUp(what: string): void {
    if (!this.upValue) throw new GatewayError('GW_ERR_CLUSTER_UNAVAILABLE', `${what}: the cluster's Redis is unreachable`);
  }

  async close(): Promise<void> {
    this.closed = true;
    // A client still reconnecting has nothing to flush: drop it rather than wait.
    if (!this.upValue) return this.destroy();
    // A Redis that stopped answering (frozen, cut off) must not hold a shutdown.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS)));
    const result = await Promise.race([Promise.allSettled([this.client.close(), this.subscriber.close()]), gaveUp]);
    clearTimeout(timer);
    if (result === 'timeout') this.destroy();
  }

  destroy(): void {
    this.closed = true;
    for (const c of [this.client, this.subscriber]) {
      try {
        c.destroy();
      } catch {
        /* already closed */
      }
    }
  }
}
