// The alert rules pass `promtool check rules`, their unit tests (deploy/prometheus/
// alerts.test.yaml) pass `promtool test rules`, and every alert has a unit test in which
// it fires. Under CI=true a missing promtool fails; elsewhere these tests skip loudly.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from './helpers/k8s.js';

const script = path.join(repoRoot, 'deploy', 'prometheus', 'rules.mjs');
const promtool = process.env.PROMTOOL ?? ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

function alertNames(): string[] {
  const rule = YAML.parse(readFileSync(path.join(repoRoot, 'deploy', 'components', 'prometheus-operator', 'prometheusrule.yaml'), 'utf8'));
  return rule.spec.groups.flatMap((g: { rules: { alert?: string }[] }) => g.rules.filter((r) => r.alert).map((r) => r.alert!));
}

function run(command: string) {
  return spawnSync(process.execPath, [script, command], { encoding: 'utf8', env: { ...process.env, PROMTOOL: promtool } });
}

test('the printed rule file holds exactly the PrometheusRule groups', (t) => {
  const printed = run('print');
  t.is(printed.status, 0, printed.stderr);
  const rule = YAML.parse(readFileSync(path.join(repoRoot, 'deploy', 'components', 'prometheus-operator', 'prometheusrule.yaml'), 'utf8'));
  t.deepEqual(YAML.parse(printed.stdout), { groups: rule.spec.groups });
});

test('every alert has a unit test in which it fires', (t) => {
  const tests = YAML.parse(readFileSync(path.join(repoRoot, 'deploy', 'prometheus', 'alerts.test.yaml'), 'utf8'));
  const firing = new Set<string>(
    tests.tests.flatMap((c: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }) =>
      (c.alert_rule_test ?? []).filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname),
    ),
  );
  const names = alertNames();
  t.true(names.length >= 15, names.join(', '));
  t.deepEqual(
    names.filter((n) => !firing.has(n)),
    [],
    'alerts without a firing case in deploy/prometheus/alerts.test.yaml',
  );
  t.deepEqual(
    [...firing].filter((n) => !names.includes(n)),
    [],
    'unit tests for alerts that do not exist',
  );
});

if (!promtool) {
  const why = 'promtool not found (Debian package prometheus; bash test/peers/install.sh)';
  if (process.env.CI === 'true') test('promtool is available in CI', (t) => t.fail(why));
  else {
    console.warn(`\n*** deploy/promtool: SKIPPING promtool check/test rules: ${why} ***\n`);
    test.skip(`promtool check rules / test rules — SKIPPED: ${why}`, () => {});
  }
} else {
  test('promtool check rules', (t) => {
    const r = run('check');
    t.is(r.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, new RegExp(`SUCCESS: ${alertNames().length + 1} rules found`));
  });

  test('promtool test rules: every alert fires on its synthetic series and stays quiet where it should', (t) => {
    const r = run('test');
    t.is(r.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /SUCCESS/);
  });
}
