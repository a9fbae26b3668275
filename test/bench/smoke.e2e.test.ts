// CI smoke run of every benchmark scenario at small sizes (20 MiB bulk, 50 devices, 10
// managers, clusters of 1 and 2 replicas): the harness keeps working and every figure is
// produced. Targets are not checked here; docs/BENCHMARKS.md has the full run.
import anyTest from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { QUICK, SCENARIOS, runBench, summaryMarkdown, writeOutputs } from '../../bench/run.js';
import { requirePeers } from '../e2e/peers/index.js';
import { GATEWAY_NODE_FLAGS } from '../../src/heap.js';

const test = requirePeers(anyTest);

const positive = (x: number): boolean => Number.isFinite(x) && x > 0;

test('every scenario runs at smoke sizes and produces its figures', async (t) => {
  t.timeout(240_000);
  const r = await runBench({ ...QUICK, scenarios: [...SCENARIOS] });
  t.true(r.nativeCrypto);
  t.deepEqual(r.gatewayHeapFlags, [...GATEWAY_NODE_FLAGS]);

  t.is(r.bulk?.rows.length, 4); // 2 ciphers × 2 directions
  for (const row of r.bulk!.rows) {
    for (const path of ['direct', 'gateway', 'sshR'] as const) t.true(positive(row.median[path]), `${row.cipher} ${row.direction} ${path}`);
    t.true(positive(row.gatewayVsDirect) && positive(row.gatewayVsSshR));
    // both hops' CPU from /proc: the gateway process, and the tunnel's ssh + the jump host's sshd
    t.true(positive(row.gatewayCpuSecondsPerGiB) && positive(row.tunnelCpuSecondsPerGiB), `${row.cipher} ${row.direction} CPU per GiB`);
    // and the whole path's, from /proc/stat (compared only in full runs: it needs a quiet machine)
    for (const path of ['direct', 'gateway', 'sshR'] as const) t.true(positive(row.pathCpuSecondsPerGiB[path]), `${row.cipher} ${row.direction} ${path} path CPU`);
  }

  const l = r.latency!;
  t.true(positive(l.direct.p50) && positive(l.gateway.p50) && l.gateway.p99 >= l.gateway.p50);
  // the fresh gateway's first RPCs, measured apart from the warmed-up ones
  t.true(positive(l.warmupRpcs) && positive(l.cold.count) && positive(l.cold.gateway.p50) && l.cold.gateway.p99 >= l.cold.gateway.p50);

  t.is(r.scale?.length, 1);
  const s = r.scale![0]!;
  t.is(s.devices, QUICK.scaleCounts[0]);
  t.true(positive(s.rssAfterMiB) && positive(s.handshakesPerCpuSecond) && positive(s.rpc.p50) && positive(s.metricsScrapeMedianMs));

  const c = r.concurrency!;
  t.is(c.managers, QUICK.managers);
  t.true(positive(c.aggregateMBps) && c.fairness > 0 && c.fairness <= 1);

  // cluster: one device held by r1, sessions on r1 (local) and r2 (forwarded); then 1 and 2 replicas
  const cl = r.cluster!;
  t.true(positive(cl.latency.local.p50) && positive(cl.latency.forwarded.p50) && cl.latency.forwarded.p99 >= cl.latency.forwarded.p50);
  t.true(positive(cl.latency.cpuMicrosPerRpc.local) && positive(cl.latency.cpuMicrosPerRpc.forwarded));
  t.deepEqual(
    cl.throughput.map((p) => [p.replicas, p.placement, p.forwardedShare]),
    [
      [1, 'owner', 0],
      [2, 'owner', 0],
      [2, 'spread', 0.5],
    ],
  );
  for (const p of cl.throughput) t.true(positive(p.rpcsPerSecond) && positive(p.gatewayCpuMsPerRpc), JSON.stringify(p));

  const dir = mkdtempSync(join(tmpdir(), 'chgw-bench-smoke-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeOutputs(r, dir, join(dir, 'figure.svg'));
  t.regex(readFileSync(join(dir, 'figure.svg'), 'utf8'), /^<svg [^]*<polyline[^]*<\/svg>\n$/);
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).settings.scaleCounts, QUICK.scaleCounts);
  t.regex(summaryMarkdown(r), /gateway\/direct/);
  t.regex(summaryMarkdown(r), /CPU-s per GiB: ssh -R hop/);
  t.regex(summaryMarkdown(r), /Whole path, busy CPU-s of the machine/);
  t.regex(summaryMarkdown(r), /\| forwarded \(manager on the other replica\) \|/);
});

test('heap-regime: fresh gateway processes on both heap settings carry bulk, with CPU and full collections counted', async (t) => {
  t.timeout(120_000);
  const script = fileURLToPath(new URL('../../bench/heap-regime.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--processes', '1', '--transfers', '2', '--size', '8']);
  for (const variant of ["node's defaults", 'GATEWAY_NODE_FLAGS']) {
    const line = new RegExp(`^${variant}, process 1: CPU-s/GiB ([0-9.]+) ([0-9.]+); full collections ([0-9]+)$`, 'm').exec(stdout);
    t.truthy(line, `${variant}:\n${stdout}`);
    t.true(positive(Number(line![1])) && positive(Number(line![2])), line![0]);
    t.regex(stdout, new RegExp(`^${variant}: [01] of 1 processes in the full-collection regime; CPU-s/GiB after warm-up: median [0-9.]+, worst [0-9.]+$`, 'm'));
  }
});
