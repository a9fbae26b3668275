// What ownership costs Redis (docs/CLUSTER.md "Measured cost"): a real redis-server, one
// replica claiming N devices, then Redis memory per device, claim/lookup rates, the command
// rate in steady state (leases only), re-registration after Redis restarts empty, and the
// cluster-wide owner listing behind /api/devices.
// Run: npm run build && node dist/bench/cluster-ownership.js [--devices 10000] [--steady 15]
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { ClusterRedis } from '../src/cluster/redis.js';
import { RedisOwnership } from '../src/cluster/ownership.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '10000' }, steady: { type: 'string', default: '15' } } });
const N = Number(values.devices);
const STEADY_S = Number(values.steady);

async function info(redis: TestRedis, field: string): Promise<number> {
  const text = await redis.command('INFO', 'ALL');
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`INFO has no ${field}`);
  return Number(m[1]);
}

async function scriptCalls(redis: TestRedis): Promise<number> {
  const text = await redis.command('INFO', 'COMMANDSTATS');
  let calls = 0;
  for (const m of text.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const ids = Array.from({ length: N }, (_, i) => `device-${String(i).padStart(5, '0')}`);

async function inChunks<T>(items: T[], fn: (item: T) => Promise<unknown>, size = 500): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function main(): Promise<void> {
  const server = await startRedis();
  const config = loadConfig([], { CHGW_CLUSTER_REDIS_URL: server.url });
  const logger = createLogger('silent');
  const redis = new ClusterRedis(config, logger);
  await redis.connect();
  const ownership = new RedisOwnership(redis, { replicaId: 'bench-a', peer: '10.0.0.1:9835', leaseTtl: config.cluster.leaseTtl, logger });
  await ownership.start();

  const memBefore = await info(server, 'used_memory');
  let t0 = performance.now();
  await inChunks(ids, (id) => ownership.claim(id, new Date(), { transport: 'ssh', remoteAddress: '192.0.2.44' }));
  const claimMs = performance.now() - t0;
  const memAfter = await info(server, 'used_memory');
  const perDevice = Math.round((memAfter - memBefore) / N);

  t0 = performance.now();
  await inChunks(ids.slice(0, 5000), (id) => ownership.lookup(id));
  const lookupMs = performance.now() - t0;
  const serial: number[] = [];
  for (const id of ids.slice(0, 500)) {
    const s = performance.now();
    await ownership.lookup(id);
    serial.push(performance.now() - s);
  }
  serial.sort((a, b) => a - b);

  t0 = performance.now();
  const owners = await ownership.owners();
  const ownersMs = performance.now() - t0;
  if (owners.size !== N) throw new Error(`owners() listed ${owners.size} of ${N}`);

  // Steady state: nothing but this replica's lease renewals (every leaseTtl/3).
  // Redis counts a script's inner commands too: requests (scripts run) and commands both.
  const cmdsBefore = await info(server, 'total_commands_processed');
  const scriptsBefore = await scriptCalls(server);
  await new Promise((r) => setTimeout(r, STEADY_S * 1000));
  const scripts = (await scriptCalls(server)) - scriptsBefore;
  // Our own INFO calls count too: three between the two readings.
  const steady = (await info(server, 'total_commands_processed')) - cmdsBefore - 3;

  // Redis restarts without persistence: everything held is registered again.
  await server.stop();
  await server.start();
  await new Promise<void>((resolve) => redis.once('ready', resolve));
  t0 = performance.now();
  await ownership.reRegister();
  const reRegisterMs = performance.now() - t0;
  const back = (await ownership.owners()).size;

  t0 = performance.now();
  await ownership.close();
  const releaseMs = performance.now() - t0;
  await redis.close();
  await server.close();

  const figures = {
    devices: N,
    redisMemoryPerDeviceBytes: perDevice,
    claimsPerSecond: rate(N, claimMs),
    lookupsPerSecondPipelined: rate(5000, lookupMs),
    lookupP50Ms: Number(serial[Math.floor(serial.length / 2)]!.toFixed(3)),
    ownersListingMs: Math.round(ownersMs),
    steadyRequestsPerSecond: Number((scripts / STEADY_S).toFixed(2)),
    steadyCommandsPerSecond: Number((steady / STEADY_S).toFixed(2)),
    steadyWindowSeconds: STEADY_S,
    leaseTtlSeconds: config.cluster.leaseTtl,
    reRegisterMs: Math.round(reRegisterMs),
    reRegistered: back,
    gracefulReleaseMs: Math.round(releaseMs),
  };
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
