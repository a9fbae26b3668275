// The pending list shared by the replicas (cluster mode): an unknown device that called any
// replica is listed, and can be approved, on every one. Each replica keeps its own list too
// (what it saw itself): that is what /api/pending answers while Redis is unreachable.
import { OnboardingPending } from '../onboarding/approvals.js';
import type { PendingDevice } from '../inventory/pending.js';
import type { Logger } from '../log.js';
import type { ClusterRedis } from './redis.js';
import { STATE_KEYS as K } from './state-keys.js';

/** Pending devices kept in Redis, like the local list: the most recently seen first. */
export const MAX_SHARED_PENDING = 1000;

// KEYS: pending, pendingSeen, rejected. ARGV: fingerprint, entry JSON, last seen (ms), max.
// Attempts add up across replicas; firstSeen is the first replica's.
const RECORD = `
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
local entry = cjson.decode(ARGV[2])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cjson.decode(old)
  entry.firstSeen = o.firstSeen
  entry.attempts = o.attempts + 1
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #gone, 2 do redis.call('HDEL', KEYS[1], gone[i]) end
end
return 1`;

export class SharedPendingDevices extends OnboardingPending {
  private failing = false;

  constructor(
    isRejected: (fingerprint: string) => boolean,
    private readonly redis: ClusterRedis,
    private readonly logger: Logger,
  ) {
    super(isRejected);
  }

  override record(fingerprint: string, keyType: string, remoteAddress: string, now = new Date()): PendingDevice {
    const entry = super.record(fingerprint, keyType, remoteAddress, now);
    // attempts 0: a rejected key, not listed. Deferred a tick: recordCertificate adds the
    // subject and issuer right after record() returns.
    if (entry.attempts > 0) queueMicrotask(() => void this.share(entry));
    return entry;
  }

  override forget(fingerprint: string): boolean {
    const had = super.forget(fingerprint);
    if (this.redis.up) {
      void this.redis.client
        .multi()
        .hDel(K.pending, fingerprint)
        .zRem(K.pendingSeen, fingerprint)
        .exec()
        .catch(() => undefined); // Redis just went away: the entry ages out of the bounded list
    }
    return had;
  }

  override async find(fingerprint: string): Promise<PendingDevice | undefined> {
    this.redis.assertUp('pending device not looked up');
    const json = await this.redis.client.hGet(K.pending, fingerprint);
    return json ? (JSON.parse(json) as PendingDevice) : undefined;
  }

  /** The cluster-wide list; what this replica saw itself while Redis is unreachable. */
  override async listAll(): Promise<PendingDevice[]> {
    if (!this.redis.up) return this.list();
    try {
      const all = Object.values(await this.redis.client.hGetAll(K.pending)).map((json) => JSON.parse(json) as PendingDevice);
      return all.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
    } catch {
      return this.list();
    }
  }

  private async share(entry: PendingDevice): Promise<void> {
    if (!this.redis.up) return;
    const { attempts: _local, ...seen } = entry;
    try {
      await this.redis.client.eval(RECORD, {
        keys: [K.pending, K.pendingSeen, K.rejected],
        arguments: [entry.fingerprint, JSON.stringify({ ...seen, attempts: 1 }), String(Date.parse(entry.lastSeen)), String(MAX_SHARED_PENDING)],
      });
      this.failing = false;
    } catch (err) {
      // One line per run of failures: an unknown device may call many times a second.
      if (!this.failing) this.logger.warn({ fingerprint: entry.fingerprint, err: (err as Error).message }, 'pending device not shared with the other replicas');
      this.failing = true;
    }
  }
}
