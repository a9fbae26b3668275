// The Lua scripts behind ownership (docs/CLUSTER.md): each runs atomically in Redis, so a
// claim, a compare-and-set and its event can never interleave with another replica's.
// They touch keys named at run time (chgw:replica:<id>): a single Redis primary (with
// replicas or Sentinel), not Redis Cluster's hash slots.
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis.js';

/** An epoch: Redis server time in ms, bumped past the last one of the device (stays rising across a Redis restart). */
const NEXT_EPOCH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function nextEpoch(stored)
  return math.max(stored + 1, now)
end
`;

/** The owner record: '{"epoch":N,' .. the rest given by the replica (no float formatting of N). */
const RECORD = `
local function record(epoch, rest)
  return '{"epoch":' .. string.format('%d', epoch) .. ',' .. string.sub(rest, 2)
end
local function announce(channel, device, value)
  redis.call('PUBLISH', channel, '{"deviceId":' .. cjson.encode(device) .. ',' .. string.sub(value, 2))
end
`;

/**
 * A new connection: always wins (it is the device's newest), with an epoch above every
 * earlier one. KEYS owners, epochs; ARGV device, record-without-epoch, channel. → epoch.
 */
export const CLAIM = `
if redis.replicate_commands then redis.replicate_commands() end
${NEXT_EPOCH}${RECORD}
local device = ARGV[1]
local stored = tonumber(redis.call('HGET', KEYS[2], device) or '0')
local epoch = nextEpoch(stored)
local value = record(epoch, ARGV[2])
redis.call('HSET', KEYS[2], device, string.format('%d', epoch))
redis.call('HSET', KEYS[1], device, value)
announce(ARGV[3], device, value)
return epoch
`;

/**
 * Re-registration of a connection held across an outage, at the epoch it had (or its
 * connection time when it was never registered): compare-and-set. Wins when the record is
 * absent, already ours, or its replica's lease is gone and no newer claim was made; loses
 * to a live replica holding an epoch at least as high, or to a newer claim since released.
 * KEYS owners, epochs; ARGV device, record-without-epoch, channel, replica, epoch, lease key prefix.
 * → {1, epoch} registered, {0, current record or ''} superseded.
 */
export const RECLAIM = `
${RECORD}
local device, me, proposed = ARGV[1], ARGV[4], tonumber(ARGV[5])
local current = redis.call('HGET', KEYS[1], device)
local stored = tonumber(redis.call('HGET', KEYS[2], device) or '0')
local epoch, mine = proposed, false
if current then
  local owner = cjson.decode(current)
  if owner.replica == me then
    -- Our own newest claim may have landed just as the connection to Redis broke.
    if owner.epoch >= proposed then return {1, owner.epoch} end
    mine = true
  elseif owner.epoch >= proposed and redis.call('EXISTS', ARGV[6] .. owner.replica) == 1 then
    return {0, current}
  end
end
if stored > proposed and not mine then return {0, current or ''} end
local value = record(epoch, ARGV[2])
if stored < epoch then redis.call('HSET', KEYS[2], device, string.format('%d', epoch)) end
redis.call('HSET', KEYS[1], device, value)
announce(ARGV[3], device, value)
return {1, epoch}
`;

/**
 * Compare-and-set delete. KEYS owners; ARGV device, replica, epoch, 'any' to match any epoch
 * of this replica (a claim whose reply was lost). → 1 deleted, 0 not ours.
 */
export const RELEASE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local owner = cjson.decode(current)
if owner.replica ~= ARGV[2] or (ARGV[4] ~= 'any' and owner.epoch ~= tonumber(ARGV[3])) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/** RELEASE for many devices at once (a graceful leave). KEYS owners; ARGV replica, then device, epoch or 'any', … */
export const RELEASE_MANY = `
local deleted = 0
for i = 2, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current then
    local owner = cjson.decode(current)
    if owner.replica == ARGV[1] and (ARGV[i + 1] == 'any' or owner.epoch == tonumber(ARGV[i + 1])) then
      redis.call('HDEL', KEYS[1], ARGV[i])
      deleted = deleted + 1
    end
  end
end
return deleted
`;

/** The record if its replica's lease is alive. KEYS owners; ARGV device, lease key prefix. */
export const LOOKUP = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return false end
local owner = cjson.decode(current)
if redis.call('EXISTS', ARGV[2] .. owner.replica) == 0 then return false end
return current
`;

/** Every record whose replica's lease is alive: {device, record, …}. KEYS owners; ARGV lease key prefix. */
export const OWNERS = `
local all = redis.call('HGETALL', KEYS[1])
local alive, out = {}, {}
for i = 1, #all, 2 do
  local replica = cjson.decode(all[i + 1]).replica
  if alive[replica] == nil then alive[replica] = redis.call('EXISTS', ARGV[1] .. replica) == 1 end
  if alive[replica] then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`;

/**
 * The heartbeat (ARGV[3] ~= '') renews this replica's lease; either way the members whose
 * lease is gone leave the set. KEYS replicas set; ARGV lease key prefix, replica, lease value
 * or '', ttl ms. → {live: {id, value, …}, gone: {id, …}, lapsed: 1 when the renewed lease
 * had expired (its records may have been swept: re-register)}.
 */
export const REPLICAS = `
local lapsed = 0
if ARGV[3] ~= '' then
  if not redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3], 'PX', ARGV[4], 'GET') then lapsed = 1 end
  redis.call('SADD', KEYS[1], ARGV[2])
end
local live, gone = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. id)
  if value then
    live[#live + 1] = id
    live[#live + 1] = value
  else
    redis.call('SREM', KEYS[1], id)
    gone[#gone + 1] = id
  end
end
return {live, gone, lapsed}
`;

/**
 * Deletes, one HSCAN page at a time, the records naming a replica whose lease is gone (or,
 * at start, this replica's own leftovers from an earlier run). KEYS owners; ARGV cursor,
 * replica, lease key prefix, '1' to sweep even with a live lease. → {next cursor, deleted}.
 */
export const SWEEP = `
if ARGV[4] ~= '1' and redis.call('EXISTS', ARGV[3] .. ARGV[2]) == 1 then return {'0', 0} end
local page = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', 500)
local deleted = 0
local items = page[2]
for i = 1, #items, 2 do
  if cjson.decode(items[i + 1]).replica == ARGV[2] then
    redis.call('HDEL', KEYS[1], items[i])
    deleted = deleted + 1
  end
end
return {page[1], deleted}
`;

const shas = new Map<string, string>();
const sha1 = (script: string): string => {
  let sha = shas.get(script);
  if (!sha) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  return sha;
};

/** EVALSHA, falling back to EVAL once when Redis does not know the script (first use, restart). */
export async function runScript(client: RedisClient, script: string, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.evalSha(sha1(script), { keys, arguments: args });
  } catch (err) {
    if (!/NOSCRIPT/.test((err as Error).message)) throw err;
    return client.eval(script, { keys, arguments: args });
  }
}
