// Reads the product contract (SPEC.md) so the deployment is checked against the document
// users rely on, not against a copy of its numbers. SPEC.md lives in shared/ beside the
// repository (override with $CHGW_SPEC_MD).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './k8s.js';

export function findSpec(): string | undefined {
  const candidates = [
    process.env.CHGW_SPEC_MD,
    path.join(repoRoot, '..', 'shared', 'SPEC.md'),
    path.join(repoRoot, 'shared', 'SPEC.md'),
    path.join(repoRoot, 'SPEC.md'),
    path.join(repoRoot, 'docs', 'SPEC.md'),
  ];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

export interface Spec {
  /** configuration key → default as written (backticks removed) */
  configDefaults: Map<string, string>;
  /**
   * Defaults SPEC.md gives only for a while ("`false` until TLS lands"): key → the interim
   * value and what ends it. Kept out of configDefaults: once the feature is in, the schema
   * default is expected to have moved on.
   */
  provisionalDefaults: Map<string, { value: string; until: string }>;
  /** HTTP paths of the "HTTP" table, e.g. /healthz */
  httpPaths: Set<string>;
  /** metric name → type from the "Metrics" table */
  metrics: Map<string, string>;
}

function tableRows(markdown: string, heading: RegExp): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return [];
  const rows: string[][] = [];
  for (let i = start + 1; i < lines.length && !/^#{1,3} /.test(lines[i]!); i++) {
    const line = lines[i]!.trim();
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    rows.push(
      line
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows.slice(1); // the header row
}

const ticks = (cell: string) => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);

export function parseSpec(markdown: string): Spec {
  const configDefaults = new Map<string, string>();
  const provisionalDefaults = new Map<string, { value: string; until: string }>();
  const configRows = [...tableRows(markdown, /^## Configuration/), ...tableRows(markdown, /^## Cluster mode/)];
  for (const [keys = '', defaults = ''] of configRows) {
    // `callhome.ssh.host` / `.port`  |  `0.0.0.0` / `4334`
    const names = ticks(keys);
    // `""` is how SPEC.md writes the empty string.
    const values = ticks(defaults).map((v) => (v === '""' ? '' : v));
    if (names.length === 0 || names.length !== values.length) continue;
    const first = names[0]!;
    const parent = first.includes('.') ? first.slice(0, first.lastIndexOf('.')) : '';
    names.forEach((name, i) => {
      const key = name.startsWith('.') ? `${parent}${name}` : name;
      const until = new RegExp('`' + values[i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '`\\s+until\\s+([^|/`]+?)\\s*(?:$|/|\\|)').exec(defaults);
      if (until) provisionalDefaults.set(key, { value: values[i]!, until: until[1]! });
      else configDefaults.set(key, values[i]!);
    });
  }
  const httpPaths = new Set<string>();
  for (const [p = ''] of tableRows(markdown, /^## HTTP/)) {
    const m = /GET\s+(\/[^\s`{]*)/.exec(p);
    if (m) httpPaths.add(m[1]!);
  }
  const metrics = new Map<string, string>();
  for (const [name = '', type = ''] of tableRows(markdown, /^## Metrics/)) {
    const [n] = ticks(name);
    if (n) metrics.set(n, type.trim());
  }
  return { configDefaults, provisionalDefaults, httpPaths, metrics };
}

export function loadSpec(): Spec | undefined {
  const file = findSpec();
  return file ? parseSpec(readFileSync(file, 'utf8')) : undefined;
}

/** SPEC's default port of a key, as a number. Throws when SPEC does not give one. */
export function specPort(spec: Spec, key: string): number {
  const raw = spec.configDefaults.get(key);
  const port = Number(raw);
  if (raw === undefined || !Number.isInteger(port)) throw new Error(`SPEC.md gives no numeric default for ${key}`);
  return port;
}
