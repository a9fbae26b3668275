// Metric names on both sides of the deployment contract: the names a gateway exposes
// (from its prom-client Registry, or from a live /metrics scrape) and the names that the
// alert rules and the Grafana dashboard use (pulled out of PromQL). Kept free of ava so an
// end-to-end test can feed it a live scrape.
import type { Registry } from 'prom-client';

/** Series names a metric of this type exposes (histograms and summaries add suffixes). */
function seriesNames(name: string, type: string): string[] {
  switch (type) {
    case 'histogram':
      return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
    case 'summary':
      return [name, `${name}_sum`, `${name}_count`];
    default:
      return [name];
  }
}

/** Every series name a registry exposes. */
export function registryMetricNames(registry: Registry): Set<string> {
  const names = new Set<string>();
  for (const metric of registry.getMetricsAsArray()) {
    const type = String((metric as unknown as { type: string }).type);
    for (const n of seriesNames(metric.name, type)) names.add(n);
  }
  return names;
}

/**
 * Every series name in a Prometheus text exposition (a live GET /metrics). A histogram
 * with no observations yet shows only its # TYPE line, so TYPE lines count as well.
 */
export function expositionMetricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
    if (type) {
      for (const n of seriesNames(type[1]!, type[2]!)) names.add(n);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads. Strings, label matchers, range and
 * subquery brackets, grouping clauses, function calls, Grafana variables and numbers are
 * removed first; what is left that looks like an identifier is a metric name.
 */
export function promqlMetricNames(expr: string): Set<string> {
  let s = expr;
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' '); // strings
  s = s.replace(/#[^\n]*/g, ' '); // comments
  s = s.replace(/\{[^}]*\}/g, ' '); // label matchers
  s = s.replace(/\[[^\]]*\]/g, ' '); // ranges, subqueries
  s = s.replace(/\$\{?[A-Za-z0-9_]+(?::[A-Za-z]+)?\}?/g, ' '); // Grafana variables
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping
  s = s.replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  s = s.replace(/@\s*(?:start\(\)|end\(\)|[0-9.]+)/g, ' ');
  const names = new Set<string>();
  const ident = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  for (let m = ident.exec(s); m; m = ident.exec(s)) {
    const word = m[0];
    const rest = s.slice(m.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation call
    const before = s.slice(0, m.index);
    if (/[0-9.]$/.test(before)) continue; // the exponent or unit of a number (1e3, 5m)
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return names;
}

/** Prometheus adds these to every target itself; they are not the gateway's to expose. */
export const PROMETHEUS_SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

export interface MetricUse {
  /** where the expression comes from, for the failure message */
  where: string;
  expr: string;
}

/**
 * The uses whose metric names are neither exposed nor synthetic nor recorded by a
 * recording rule of the same rule set. Returns one line per unknown name.
 */
export function unknownMetricUses(uses: MetricUse[], available: Set<string>, recorded: Set<string> = new Set()): string[] {
  const problems: string[] = [];
  for (const use of uses) {
    for (const name of promqlMetricNames(use.expr)) {
      if (available.has(name) || PROMETHEUS_SYNTHETIC.has(name) || recorded.has(name)) continue;
      problems.push(`${use.where}: ${name} is not a metric the gateway exposes`);
    }
  }
  return problems;
}
