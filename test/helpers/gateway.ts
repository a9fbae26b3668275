// Starts an in-process gateway on free loopback ports with temporary config files, and
// captures its log lines so tests can assert on reasons (and on the absence of secrets);
// close() checks every line against the log schema (test/helpers/log-schema.ts).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { logProblems } from './log-schema.js';
import { initCertificates, issuePeerFiles } from '../../src/tls/certs.js';

export interface TestGateway {
  gateway: Gateway;
  config: Config;
  dir: string;
  inventoryFile: string;
  usersFile: string;
  logs: string[];
  callhomePort: number;
  northboundPort: number;
  httpPort: number;
  get<T = unknown>(urlPath: string): Promise<{ status: number; body: T }>;
  metrics(): Promise<string>;
  /** The value of one metric series from /metrics, e.g. `callhome_connections_total{transport="ssh",result="accepted"}`. */
  metric(series: string): Promise<number>;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  inventory?: string;
  users?: string;
  env?: Record<string, string>;
  /** The loopback address every listener binds (default 127.0.0.1): replicas side by side, like pods. */
  host?: string;
  /** Test-only edits of the loaded config, e.g. keepalive intervals below the public floor. */
  tweak?: (config: Config) => void;
}

export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const host = options.host ?? '127.0.0.1';
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-gw-'));
  const inventoryFile = path.join(dir, 'devices.yaml');
  const usersFile = path.join(dir, 'users.yaml');
  writeFileSync(inventoryFile, options.inventory ?? 'devices: []\n');
  writeFileSync(usersFile, options.users ?? 'users: []\n');
  const config = loadConfig([], {
    CHGW_STATEDIR: path.join(dir, 'state'),
    CHGW_INVENTORY_FILE: inventoryFile,
    CHGW_USERS_FILE: usersFile,
    CHGW_CALLHOME_SSH_HOST: host,
    CHGW_CALLHOME_SSH_PORT: '0',
    CHGW_CALLHOME_TLS_HOST: host,
    CHGW_CALLHOME_TLS_PORT: '0',
    CHGW_NORTHBOUND_HOST: host,
    CHGW_NORTHBOUND_PORT: '0',
    CHGW_HTTP_HOST: host,
    CHGW_HTTP_PORT: '0',
    CHGW_LOG_LEVEL: 'debug',
    CHGW_AUDIT_FILE: path.join(dir, 'audit.jsonl'),
    // Cluster mode needs peer certificates and a peer listener: one test CA, any free port.
    ...(options.env?.CHGW_CLUSTER_REDIS_URL && !options.env.CHGW_CLUSTER_PEER_CERTFILE ? testPeerEnv(host) : {}),
    ...options.env,
  });
  options.tweak?.(config);
  const logs: string[] = [];
  const waiters = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      for (const w of waiters) w();
      done();
    },
  });
  const gateway = new Gateway(config, createLogger('debug', sink));
  await gateway.start();
  const ports = gateway.addresses();
  const base = `http://${/^(0\.0\.0\.0|::)$/.test(config.http.host) ? '127.0.0.1' : config.http.host}:${ports.http}`;
  const self: TestGateway = {
    gateway,
    config,
    dir,
    inventoryFile,
    usersFile,
    logs,
    callhomePort: ports.callhomeSsh,
    northboundPort: ports.northbound,
    httpPort: ports.http,
    async get<T>(urlPath: string) {
      const res = await fetch(base + urlPath);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON: metrics */
      }
      return { status: res.status, body: body as T };
    },
    async metrics() {
      return (await fetch(base + '/metrics')).text();
    },
    async metric(series: string) {
      const text = await self.metrics();
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.slice(series.length + 1)) : 0;
    },
    waitForLog(re: RegExp, timeoutMs = 10_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const hit = logs.find((l) => re.test(l));
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: async () => {
      await gateway.close();
      // Every line this gateway wrote, logs and audit records, follows docs/LOGS.md.
      const audit = existsSync(config.audit.file) ? readFileSync(config.audit.file, 'utf8').split('\n') : [];
      const problems = logProblems([...logs, ...audit]);
      if (problems.length > 0) throw new Error(`log lines outside the schema of docs/LOGS.md:\n${problems.join('\n')}`);
    },
  };
  return self;
}

let peerFiles: { cert: string; key: string; ca: string } | undefined;

/** A peer certificate of one CA for every cluster-mode gateway of this test process. */
function testPeerEnv(host: string): Record<string, string> {
  if (!peerFiles) {
    const dir = mkdtempSync(path.join(tmpdir(), 'chgw-peer-'));
    initCertificates(path.join(dir, 'ca'));
    peerFiles = { cert: path.join(dir, 'peer.crt'), key: path.join(dir, 'peer.key'), ca: path.join(dir, 'ca.crt') };
    issuePeerFiles(path.join(dir, 'ca'), peerFiles);
  }
  return {
    CHGW_CLUSTER_PEER_HOST: host,
    CHGW_CLUSTER_PEER_PORT: '0',
    CHGW_CLUSTER_PEER_CAFILE: peerFiles.ca,
    CHGW_CLUSTER_PEER_CERTFILE: peerFiles.cert,
    CHGW_CLUSTER_PEER_KEYFILE: peerFiles.key,
  };
}
