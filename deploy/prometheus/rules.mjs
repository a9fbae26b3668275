#!/usr/bin/env node
// The alert rules of deploy/components/prometheus-operator/prometheusrule.yaml as a plain
// Prometheus rule file, for a Prometheus without the Operator and for promtool.
//
//   node deploy/prometheus/rules.mjs > callhome-gateway.rules.yaml   # print the rule file
//   node deploy/prometheus/rules.mjs check                            # promtool check rules
//   node deploy/prometheus/rules.mjs test                             # promtool test rules alerts.test.yaml
//
// check and test write the rule file into a temporary directory beside a copy of
// alerts.test.yaml (which names it as callhome-gateway.rules.yaml) and exit with
// promtool's status. PROMTOOL=/path/to/promtool overrides the one on $PATH.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, '..', 'components', 'prometheus-operator', 'prometheusrule.yaml');

export function ruleFileText() {
  const rule = YAML.parse(readFileSync(source, 'utf8'));
  if (rule?.kind !== 'PrometheusRule') throw new Error(`${source} is not a PrometheusRule`);
  return `# Generated from ${path.relative(process.cwd(), source)} by deploy/prometheus/rules.mjs\n` + YAML.stringify({ groups: rule.spec.groups }, { lineWidth: 0 });
}

function promtool(args) {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-rules-'));
  try {
    writeFileSync(path.join(dir, 'callhome-gateway.rules.yaml'), ruleFileText());
    if (args(dir)[0] === 'test') copyFileSync(path.join(here, 'alerts.test.yaml'), path.join(dir, 'alerts.test.yaml'));
    const bin = process.env.PROMTOOL || 'promtool';
    const r = spawnSync(bin, args(dir), { stdio: 'inherit' });
    if (r.error) {
      console.error(`rules.mjs: cannot run ${bin}: ${r.error.message}`);
      return 127;
    }
    return r.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const command = process.argv[2] ?? 'print';
  if (command === 'print') process.stdout.write(ruleFileText());
  else if (command === 'check') process.exitCode = promtool((dir) => ['check', 'rules', path.join(dir, 'callhome-gateway.rules.yaml')]);
  else if (command === 'test') process.exitCode = promtool((dir) => ['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
  else {
    console.error('usage: node deploy/prometheus/rules.mjs [print | check | test]');
    process.exitCode = 2;
  }
}
