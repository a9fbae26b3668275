// Every counter is exported from start-up with each documented label value at 0 (SPEC.md
// "Metrics"), so increase()/rate() in alerts see the first failure after a restart.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  CLIENT_SESSION_RESULTS,
  CONNECTION_RESULTS,
  DISCONNECT_CODES,
  FORWARDED_DIRECTIONS,
  FORWARDED_RESULTS,
  GatewayMetrics,
  TRANSPORTS,
  disconnectReason,
  memoryLimitBytes,
  zeroSeries,
} from '../src/metrics.js';
import { DIRECTIONS } from '../src/netconf/direction.js';
import { HELD_KEEPALIVE_RESULTS } from '../src/device/held-metrics.js';
import { startGateway } from './helpers/gateway.js';
import { callHomeConnected, withGateway } from './helpers/fixture.js';
import { ScriptedDevice } from './helpers/ssh-device.js';
import { repoRoot } from './deploy/helpers/k8s.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { types, samples };
}

/** The backticked values in a docs/METRICS.md row's labels cell: `result` (`a`, `b`) → {result: [a, b]}. */
function documentedLabelValues(metric: string): Map<string, string[]> {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'METRICS.md'), 'utf8');
  const row = doc.split('\n').find((l) => l.startsWith(`| \`${metric}\` |`));
  if (!row) throw new Error(`docs/METRICS.md has no row for ${metric}`);
  const cell = row.split('|')[3]!;
  const out = new Map<string, string[]>();
  for (const m of cell.matchAll(/`(\w+)`[^(`]*\(([^)]*)\)/g)) {
    out.set(
      m[1]!,
      [...m[2]!.matchAll(/`([^`]+)`/g)].map((v) => v[1]!),
    );
  }
  return out;
}

test('zeroSeries exports every combination of the label values at 0', async (t) => {
  const registry = new Registry();
  const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['a', 'b'], registers: [registry] });
  const g = new Gauge({ name: 'g', help: 'h', labelNames: ['a'], registers: [registry] });
  zeroSeries(c, { a: ['x', 'y'], b: ['1', '2', '3'] });
  zeroSeries(g, { a: ['x'] });
  const { samples } = parseExposition(await registry.metrics());
  t.is(samples.filter((s) => s.name === 'c_total' && s.value === 0).length, 6);
  t.deepEqual(
    samples.filter((s) => s.name === 'g'),
    [{ name: 'g', labels: { a: 'x' }, value: 0 }],
  );
});

test('a fresh gateway exports every documented label value of every counter at 0', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const { types, samples } = parseExposition(await gw.metrics());
  const has = (name: string, labels: Record<string, string>) =>
    samples.some((s) => s.name === name && s.value === 0 && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const missing: string[] = [];
  const expect = (name: string, labels: Record<string, string>) => {
    if (!has(name, labels)) missing.push(`${name}${JSON.stringify(labels)}`);
  };
  for (const transport of TRANSPORTS) {
    expect('callhome_devices_connected', { transport });
    for (const result of CONNECTION_RESULTS) expect('callhome_connections_total', { transport, result });
    for (const name of ['lends', 'busy', 'dropped_replies']) expect(`callhome_held_session_${name}_total`, { transport });
    for (const result of HELD_KEEPALIVE_RESULTS) expect('callhome_held_session_keepalives_total', { transport, result });
  }
  for (const result of CLIENT_SESSION_RESULTS) expect('callhome_client_sessions_total', { result });
  for (const direction of DIRECTIONS) {
    expect('callhome_netconf_messages_total', { direction });
    expect('callhome_netconf_bytes_total', { direction });
  }
  for (const code of DISCONNECT_CODES) expect('callhome_device_disconnects_total', { reason: disconnectReason(code) });
  for (const direction of FORWARDED_DIRECTIONS) for (const result of FORWARDED_RESULTS) expect('callhome_cluster_forwarded_sessions_total', { direction, result });
  t.deepEqual(missing, [], `not exported at start-up: ${missing.join(', ')}`);

  // The generic rule, so a counter added later cannot be forgotten: every counter of the
  // gateway's registry has series before any traffic (zeroSeries, or no labels at all).
  const counters = [...types].filter(([, type]) => type === 'counter').map(([name]) => name);
  t.true(counters.filter((n) => n.startsWith('callhome_')).length >= 9, counters.join(', '));
  const silent = counters.filter((name) => !samples.some((s) => s.name === name));
  t.deepEqual(silent, [], `counters with no series at start-up (zeroSeries them with their label values): ${silent.join(', ')}`);
});

test('docs/METRICS.md documents exactly the label values exported at start-up', (t) => {
  const cases: [string, string, readonly string[]][] = [
    ['callhome_connections_total', 'result', CONNECTION_RESULTS],
    ['callhome_client_sessions_total', 'result', CLIENT_SESSION_RESULTS],
    ['callhome_netconf_messages_total', 'direction', DIRECTIONS],
    ['callhome_device_disconnects_total', 'reason', DISCONNECT_CODES.map(disconnectReason)],
    ['callhome_held_session_keepalives_total', 'result', HELD_KEEPALIVE_RESULTS],
    ['callhome_cluster_forwarded_sessions_total', 'direction', FORWARDED_DIRECTIONS],
    ['callhome_cluster_forwarded_sessions_total', 'result', FORWARDED_RESULTS],
  ];
  for (const [metric, label, values] of cases) {
    t.deepEqual([...(documentedLabelValues(metric).get(label) ?? [])].sort(), [...values].sort(), `${metric} ${label}`);
  }
});

test("docs/METRICS.md has a row for every metric of the gateway's own", async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const { types } = parseExposition(await gw.metrics());
  const doc = readFileSync(path.join(repoRoot, 'docs', 'METRICS.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| `callhome_'));
  const names = [...types.keys()].filter((n) => n.startsWith('callhome_'));
  t.true(names.length >= 15, names.join(', '));
  const undocumented = names.filter((n) => !rows.some((row) => row.split('|')[1]!.includes(`\`${n}\``)));
  t.deepEqual(undocumented, [], `registered but not in docs/METRICS.md: ${undocumented.join(', ')}`);
});

test('the memory limit is positive and never above the machine', async (t) => {
  const limit = memoryLimitBytes();
  t.true(limit > 0);
  const m = new GatewayMetrics({ defaultMetrics: false });
  const { samples } = parseExposition(await m.registry.metrics());
  t.is(samples.find((s) => s.name === 'callhome_memory_limit_bytes')?.value, limit);
});

test("the open-socket gauges report the gateway's connection ceiling and what it holds", async (t) => {
  const device = new ScriptedDevice();
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], connect: [], env: { CHGW_LIMITS_MAXOPENFILES: '321' } });
  t.is(await gw.metric('callhome_open_sockets_ceiling'), 321);
  const idle = await gw.metric('callhome_open_sockets');
  await callHomeConnected(gw, device, 'edge-1');
  t.true((await gw.metric('callhome_open_sockets')) >= idle + 1, 'the device connection is counted');
});
