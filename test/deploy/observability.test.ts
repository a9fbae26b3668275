// The alert rules and the Grafana dashboard only use metrics the gateway exposes, every
// SPEC.md metric is on the dashboard, and every alert is explained in docs/OPERATIONS.md.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { GatewayMetrics } from '../../src/metrics.js';
import { HeldSessionMetrics } from '../../src/device/held-metrics.js';
import { expositionMetricNames, promqlMetricNames, registryMetricNames, unknownMetricUses, type MetricUse } from './helpers/metric-names.js';
import { repoRoot } from './helpers/k8s.js';
import { loadSpec } from './helpers/spec.js';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** PrometheusRule files under deploy/ (read as written; kustomize does not change them). */
function ruleFiles(): { file: string; groups: { name: string; rules: Rule[] }[] }[] {
  const out: { file: string; groups: { name: string; rules: Rule[] }[] }[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) {
        for (const doc of YAML.parseAllDocuments(readFileSync(p, 'utf8'))) {
          const o = doc.toJSON() as { kind?: string; spec?: { groups: { name: string; rules: Rule[] }[] } } | null;
          if (o?.kind === 'PrometheusRule') out.push({ file: path.relative(repoRoot, p), groups: o.spec?.groups ?? [] });
        }
      }
    }
  };
  walk(path.join(repoRoot, 'deploy'));
  return out;
}

function dashboards(): { file: string; json: any }[] {
  const dir = path.join(repoRoot, 'deploy', 'grafana');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: path.join('deploy', 'grafana', f), json: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) }));
}

function dashboardUses(file: string, json: any): MetricUse[] {
  const uses: MetricUse[] = [];
  const panels = (json.panels ?? []).flatMap((p: any) => [p, ...(p.panels ?? [])]);
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      if (target.expr) uses.push({ where: `${file} panel "${panel.title}"`, expr: target.expr });
    }
  }
  for (const v of json.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    // label_values(metric{…}, label) reads a metric too.
    const m = /label_values\((.*),\s*\w+\)\s*$/.exec(q ?? '');
    if (m) uses.push({ where: `${file} variable $${v.name}`, expr: m[1]! });
  }
  return uses;
}

const ruleUses = (): { uses: MetricUse[]; recorded: Set<string> } => {
  const uses: MetricUse[] = [];
  const recorded = new Set<string>();
  for (const { file, groups } of ruleFiles()) {
    for (const g of groups) {
      for (const r of g.rules) {
        if (r.record) recorded.add(r.record);
        uses.push({ where: `${file} ${r.alert ?? r.record}`, expr: r.expr });
      }
    }
  }
  return { uses, recorded };
};

/** Every metric a gateway registers: the contract metrics and the held-session ones. */
const exposed = () => {
  const metrics = new GatewayMetrics();
  new HeldSessionMetrics(metrics.registry);
  return registryMetricNames(metrics.registry);
};

test('PromQL name extraction', (t) => {
  t.deepEqual([...promqlMetricNames('histogram_quantile(0.99, sum by (le, operation) (rate(foo_bucket{job="a", x=~"b|c"}[5m])))')], ['foo_bucket']);
  t.deepEqual([...promqlMetricNames('sum(a_total offset 5m) / on(job) group_left(instance) b > bool 1e3 and c unless absent(d{e="f"})')].sort(), ['a_total', 'b', 'c', 'd']);
  t.deepEqual([...promqlMetricNames('rate(x[$__rate_interval]) * 60 > 5 or max_over_time(rec:y:sum[6h:1m])')].sort(), ['rec:y:sum', 'x']);
  t.deepEqual([...promqlMetricNames('up{job="$job", namespace=~"$namespace"} == 0')], ['up']);
});

test('names from a registry and from its /metrics text agree (the live-scrape path)', async (t) => {
  const m = new GatewayMetrics();
  m.rpcDuration.observe({ operation: 'get' }, 0.01);
  const fromText = expositionMetricNames(await m.registry.metrics());
  const fromRegistry = registryMetricNames(m.registry);
  t.deepEqual(
    [...fromText].filter((n) => !fromRegistry.has(n)),
    [],
  );
  t.deepEqual(
    [...fromRegistry].filter((n) => !fromText.has(n)),
    [],
  );
  t.true(fromText.has('callhome_rpc_duration_seconds_bucket'));
  t.true(fromText.has('callhome_handshake_duration_seconds_count'), 'histogram without observations still counts via # TYPE');
});

test('the metric check reports a name the gateway does not expose', (t) => {
  const problems = unknownMetricUses([{ where: 'x', expr: 'rate(callhome_no_such_metric_total[5m]) + callhome_devices_connected' }], exposed());
  t.deepEqual(problems, ['x: callhome_no_such_metric_total is not a metric the gateway exposes']);
});

test('every metric in the alert rules is exposed by the gateway', (t) => {
  const { uses, recorded } = ruleUses();
  t.true(uses.length >= 8, `only ${uses.length} rules found`);
  const problems = unknownMetricUses(uses, exposed(), recorded);
  t.deepEqual(problems, [], problems.join('\n'));
});

test('every metric on the dashboard is exposed by the gateway', (t) => {
  const all = dashboards();
  t.true(all.length >= 1);
  const problems = all.flatMap(({ file, json }) => unknownMetricUses(dashboardUses(file, json), exposed()));
  t.deepEqual(problems, [], problems.join('\n'));
});

test('SPEC.md metrics are the ones the gateway registers, and the dashboard shows each of them', (t) => {
  const spec = loadSpec();
  const names = exposed();
  const used = new Set(dashboards().flatMap(({ file, json }) => dashboardUses(file, json).flatMap((u) => [...promqlMetricNames(u.expr)])));
  const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
  const specNames = spec ? [...spec.metrics.keys()] : [...names].filter((n) => n.startsWith('callhome_')).map(base);
  t.true(specNames.length >= 8, 'SPEC.md metrics table not found');
  for (const name of specNames) {
    t.true(names.has(name), `SPEC.md metric ${name} is not registered by GatewayMetrics`);
    t.true(
      [...used].some((u) => base(u) === name),
      `dashboard does not show ${name}`,
    );
  }
});

test('the dashboard shows every metric of the gateway', (t) => {
  const used = new Set(dashboards().flatMap(({ file, json }) => dashboardUses(file, json).flatMap((u) => [...promqlMetricNames(u.expr)])));
  const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
  const shown = new Set([...used].map(base));
  const missing = [...exposed()]
    .filter((n) => n.startsWith('callhome_'))
    .map(base)
    .filter((n) => !shown.has(n));
  t.deepEqual([...new Set(missing)], [], 'callhome_* metrics on no dashboard panel');
});

test('alerts are complete and each is explained in docs/OPERATIONS.md', (t) => {
  const ops = readFileSync(path.join(repoRoot, 'docs', 'OPERATIONS.md'), 'utf8');
  const headings = new Set([...ops.matchAll(/^#{2,4}\s+`?([A-Za-z]+)`?\s*$/gm)].map((m) => m[1]!));
  const alerts = ruleFiles().flatMap(({ groups }) => groups.flatMap((g) => g.rules.filter((r) => r.alert)));
  const names = alerts.map((a) => a.alert!);
  for (const wanted of ['down', 'disconnected', 'unknown', 'authfail', 'latency', 'limit', 'openfiles', 'memory', 'eventloop']) {
    t.true(
      names.some((n) => n.toLowerCase().includes(wanted)),
      `an alert about "${wanted}"`,
    );
  }
  for (const a of alerts) {
    t.truthy(a.labels?.severity, `${a.alert}: severity label`);
    t.true(['critical', 'warning', 'info'].includes(a.labels!.severity!), `${a.alert}: severity ${a.labels?.severity}`);
    t.truthy(a.annotations?.summary && a.annotations?.description, `${a.alert}: summary and description`);
    t.true(headings.has(a.alert!), `${a.alert}: no "### ${a.alert}" section in docs/OPERATIONS.md`);
    t.is(a.annotations?.runbook_url, `docs/OPERATIONS.md#${a.alert!.toLowerCase()}`, `${a.alert}: runbook_url annotation`);
  }
});

test('the dashboard is well formed', (t) => {
  for (const { file, json } of dashboards()) {
    t.truthy(json.uid && json.title, `${file}: uid and title`);
    t.true(Number.isInteger(json.schemaVersion), `${file}: schemaVersion`);
    const panels = (json.panels ?? []).flatMap((p: any) => [p, ...(p.panels ?? [])]);
    const ids = panels.map((p: any) => p.id);
    t.is(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    t.truthy(
      json.templating.list.find((v: any) => v.type === 'datasource'),
      `${file}: a datasource variable`,
    );
    for (const p of panels) {
      t.truthy(p.gridPos && p.gridPos.w > 0 && p.gridPos.h > 0 && p.gridPos.x + p.gridPos.w <= 24, `${file}: "${p.title}" gridPos`);
      if (p.type === 'row') continue;
      t.true((p.targets ?? []).length > 0, `${file}: "${p.title}" has queries`);
      const ds = JSON.stringify([p.datasource, ...(p.targets ?? []).map((x: any) => x.datasource)]);
      t.notRegex(ds, /"uid":"(?!\$\{datasource\})/, `${file}: "${p.title}" must use the $datasource variable, not a fixed uid`);
    }
    // No two panels overlap.
    const cells = new Map<string, string>();
    const overlaps: string[] = [];
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const key = `${x},${y}`;
          if (cells.has(key)) overlaps.push(`"${p.title}" overlaps "${cells.get(key)}" at ${key}`);
          cells.set(key, p.title);
        }
      }
    }
    t.deepEqual(overlaps, [], `${file}: ${overlaps.slice(0, 3).join('; ')}`);
  }
});
