// The operator's approvals and rejections in Redis (cluster mode), so a decision taken on one
// replica counts on all of them. The ApprovalStore keeps the in-memory copy every read uses
// (synchronous, as in standalone mode); writes go to Redis first, in one Lua script each, and
// fail with GW_ERR_CLUSTER_UNAVAILABLE while Redis is unreachable. The copy is re-read on
// every change event and whenever Redis comes back.
import { GatewayError } from '../errors.js';
import type { Approval, ApprovalChange, ApprovalState, ApprovalStore } from '../onboarding/approvals.js';
import type { ClusterRedis } from './redis.js';
import { STATE_KEYS as K } from './state-keys.js';

const KEYS = [K.approvals, K.approvalIds, K.rejected, K.pending, K.pendingSeen];

// KEYS as above; ARGV: fingerprint, id, approval JSON, channel.
const APPROVE = `
local byId = redis.call('HGET', KEYS[2], ARGV[2])
if byId then redis.call('HDEL', KEYS[1], byId) end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[2], cjson.decode(old).id) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('PUBLISH', ARGV[4], 'approvals')
return 1`;

// ARGV: fingerprint, rejected at (ms), max rejected kept, channel.
const REJECT = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local id = cjson.decode(old).id
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then redis.call('HDEL', KEYS[2], id) end
end
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[3])
if over > 0 then redis.call('ZPOPMIN', KEYS[3], over) end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('PUBLISH', ARGV[4], 'approvals')
return 1`;

// After Redis lost the state: adds what a replica holds, never overriding what is there
// (another replica may have restored first). ARGV: channel, [{fingerprint, id}] JSON,
// [[fingerprint, ms]] JSON, then each approval's JSON in the same order.
const RESTORE = `
local added = 0
for i, a in ipairs(cjson.decode(ARGV[2])) do
  if redis.call('HEXISTS', KEYS[1], a.fingerprint) == 0 and redis.call('HEXISTS', KEYS[2], a.id) == 0 and not redis.call('ZSCORE', KEYS[3], a.fingerprint) then
    redis.call('HSET', KEYS[1], a.fingerprint, ARGV[3 + i])
    redis.call('HSET', KEYS[2], a.id, a.fingerprint)
    added = added + 1
  end
end
for _, r in ipairs(cjson.decode(ARGV[3])) do
  if redis.call('HEXISTS', KEYS[1], r[1]) == 0 then
    added = added + redis.call('ZADD', KEYS[3], 'NX', r[2], r[1])
  end
end
if added > 0 then redis.call('PUBLISH', ARGV[1], 'approvals') end
return added`;

export class SharedApprovals {
  constructor(
    private readonly redis: ClusterRedis,
    private readonly store: ApprovalStore,
  ) {}

  /** Records a decision in Redis (and tells every replica); throws GW_ERR_CLUSTER_UNAVAILABLE when it cannot. */
  async write(change: ApprovalChange): Promise<void> {
    const what = change.kind === 'approve' ? 'approval not recorded' : 'rejection not recorded';
    this.redis.assertUp(what);
    const args =
      change.kind === 'approve'
        ? { script: APPROVE, arguments: [change.approval.fingerprint, change.approval.id, JSON.stringify(change.approval), K.changes] }
        : { script: REJECT, arguments: [change.fingerprint, String(Date.parse(change.rejectedAt)), String(this.store.maxRejected), K.changes] };
    try {
      await this.redis.client.eval(args.script, { keys: KEYS, arguments: args.arguments });
    } catch (err) {
      throw new GatewayError('GW_ERR_CLUSTER_UNAVAILABLE', `${what}: the cluster's Redis failed (${(err as Error).message})`);
    }
  }

  /** Re-reads the decisions from Redis into the store; true when they differ from the copy held. */
  async reload(): Promise<boolean> {
    const [approved, rejected] = (await this.redis.client.multi().hGetAll(K.approvals).zRangeWithScores(K.rejected, 0, -1).exec()) as unknown as [
      Record<string, string>,
      Array<{ value: string; score: number }>,
    ];
    const state: ApprovalState = {
      approved: Object.values(approved)
        .map((json) => JSON.parse(json) as Approval)
        .sort((a, b) => (a.approvedAt < b.approvedAt ? -1 : a.approvedAt > b.approvedAt ? 1 : 0)),
      rejected: rejected.map((r) => ({ fingerprint: r.value, rejectedAt: new Date(r.score).toISOString() })),
    };
    return this.store.replace(state);
  }

  /** Adds what this replica holds to a Redis that lost it; resolves how many entries were added. */
  async restore(): Promise<number> {
    const { approved, rejected } = this.store.snapshot();
    const rejections = rejected.map((r) => [r.fingerprint, String(Date.parse(r.rejectedAt))]);
    // The approvals travel as they are stored, so Lua's JSON round trip cannot alter them.
    const added = await this.redis.client.eval(RESTORE, {
      keys: KEYS,
      arguments: [
        K.changes,
        JSON.stringify(approved.map((a) => ({ fingerprint: a.fingerprint, id: a.id }))),
        JSON.stringify(rejections),
        ...approved.map((a) => JSON.stringify(a)),
      ],
    });
    return Number(added);
  }
}
