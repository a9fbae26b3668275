// A real Prometheus (Debian's `prometheus` package) for end-to-end checks of the alert
// rules: its own free port, a temporary config and data directory, short scrape and
// evaluation intervals, and the rule file deploy/prometheus/rules.mjs prints.
import { execFileSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { BIN } from './constants.js';
import { freePort, makeTempDir, removeTempDir, repoRoot, spawnGroup, terminateGroup, waitFor } from './util.js';

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  value: string;
}

export interface PrometheusRule {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  state?: string;
}

export interface TestPrometheus {
  readonly url: string;
  readonly logFile: string;
  /** An instant query; the result vector. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** A range query over the last `seconds`; the matrix. */
  queryRange(expr: string, seconds: number): Promise<{ metric: Record<string, string>; values: [number, string][] }[]>;
  alerts(): Promise<PrometheusAlert[]>;
  rules(): Promise<PrometheusRule[]>;
  /** Targets and their scrape health. */
  targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus scraping `targets` (host:port, path /metrics) as job "callhome-gateway",
 * with the gateway's alert rules, every `intervalSeconds` (scrape and rule evaluation).
 */
export async function startPrometheus(options: { targets: string[]; intervalSeconds?: number; labels?: Record<string, string> }): Promise<TestPrometheus> {
  const dir = makeTempDir('chgw-prometheus-');
  const port = await freePort();
  const interval = `${options.intervalSeconds ?? 1}s`;
  const rules = YAML.parse(execFileSync(process.execPath, [join(repoRoot(), 'deploy', 'prometheus', 'rules.mjs')], { encoding: 'utf8' })) as {
    groups: { interval?: string }[];
  };
  // Every group at the short test interval (the recording group's own is 1m).
  for (const g of rules.groups) delete g.interval;
  writeFileSync(join(dir, 'callhome-gateway.rules.yaml'), JSON.stringify(rules));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: [join(dir, 'callhome-gateway.rules.yaml')],
      scrape_configs: [
        {
          job_name: 'callhome-gateway',
          static_configs: [{ targets: options.targets, labels: options.labels ?? {} }],
        },
      ],
    }),
  );
  const logFile = join(dir, 'prometheus.log');
  const log = openSync(logFile, 'a');
  const group = spawnGroup(
    BIN.prometheus,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  const stop = async () => {
    await terminateGroup(group, 5000);
    removeTempDir(dir);
  };
  try {
    await waitFor(
      'Prometheus to be ready',
      async () => {
        if (group.hasExited) throw new Error(`prometheus exited at start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok;
      },
      { timeoutMs: 30_000 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const q = encodeURIComponent;
  return {
    url,
    logFile,
    query: async (expr) => (await api<{ result: any[] }>(`/api/v1/query?query=${q(expr)}`)).result,
    queryRange: async (expr, seconds) => {
      const end = Date.now() / 1000;
      return (await api<{ result: any[] }>(`/api/v1/query_range?query=${q(expr)}&start=${end - seconds}&end=${end}&step=${interval}`)).result;
    },
    alerts: async () => (await api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts,
    rules: async () => (await api<{ groups: { rules: PrometheusRule[] }[] }>('/api/v1/rules')).groups.flatMap((g) => g.rules),
    targets: async () => (await api<{ activeTargets: any[] }>('/api/v1/targets')).activeTargets,
    stop,
  };
}
