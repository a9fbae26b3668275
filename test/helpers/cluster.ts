// A cluster of real gateway processes (`node dist/src/cli/main.js run --config FILE`), as pods
// run it: each replica on its own loopback address (127.0.0.2, .3, .4 …) with the same
// ports, one shared redis-server, one inventory and users file, one northbound host key,
// and a peer certificate per replica from one CA (`certs init`, then `certs peer`).
// Every process it starts is recorded and killed by its PID (never by name) at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, waitFor, generateKeyPair, type KeyPair } from '../e2e/peers/util.js';
import { logProblems } from './log-schema.js';
import { startRedis, type TestRedis } from './redis.js';
import { GATEWAY_NODE_FLAGS } from '../../src/heap.js';
import { benchHeapFlags } from '../../bench/lib/gateway-process.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

export const ADMIN_TOKEN = 'cluster-test-admin-token-0123456789';

export interface ClusterPorts {
  callhome: number;
  northbound: number;
  http: number;
  peer: number;
  /** per-device ports (northbound.portRange), when asked for */
  range?: [number, number];
}

export interface ClusterOptions {
  /** 2 or 3 (addresses 127.0.0.2 …) */
  replicas: number;
  /** the inventory (YAML), or made from the ports chosen (for per-device ports) */
  inventory: string | ((ports: ClusterPorts) => string);
  users: string;
  /** cluster.leaseTtl (default 3 s, small so failures show quickly) */
  leaseTtl?: number;
  /** size of northbound.portRange, 0 = off (default) */
  portRange?: number;
  /** northbound.waitForDevice (default 0) */
  waitForDevice?: number;
  /** shutdown.grace (default 5) */
  grace?: number;
  /** extra CHGW_* environment for every replica */
  env?: Record<string, string>;
  /** first address's last octet (default 2: 127.0.0.2) */
  firstAddress?: number;
}

/** True when every host can bind every port right now. */
async function bindable(hosts: string[], ports: number[]): Promise<boolean> {
  const servers: ReturnType<typeof createServer>[] = [];
  try {
    for (const host of hosts) {
      for (const port of ports) {
        const s = createServer();
        servers.push(s);
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen({ port, host, exclusive: true }, () => resolve());
        });
      }
    }
    return true;
  } catch {
    return false;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
  }
}

/** Ports free on every host at once (same ports on each replica, as pods have). */
async function commonPorts(hosts: string[], rangeSize: number): Promise<ClusterPorts> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Above the usual ephemeral range's start is busy with outgoing connections: pick 20000-32000.
    const base = 20000 + Math.floor(Math.random() * 12000);
    const ports = [base, base + 1, base + 2, base + 3];
    const range = rangeSize > 0 ? Array.from({ length: rangeSize }, (_, i) => base + 4 + i) : [];
    if (await bindable(hosts, [...ports, ...range])) {
      return {
        callhome: base,
        northbound: base + 1,
        http: base + 2,
        peer: base + 3,
        ...(rangeSize > 0 ? { range: [base + 4, base + 3 + rangeSize] as [number, number] } : {}),
      };
    }
  }
  throw new Error(`no common free ports on ${hosts.join(', ')}`);
}

export class Replica {
  child: ChildProcess | undefined;
  /** Every line it wrote, all runs. */
  readonly logs: string[] = [];
  private exitedPromise: Promise<number | null> = Promise.resolve(null);
  private stderr = '';

  constructor(
    readonly index: number,
    readonly id: string,
    readonly host: string,
    readonly ports: ClusterPorts,
    readonly configFile: string,
    readonly logFile: string,
    /** extra CHGW_* environment */
    readonly env: Record<string, string> = {},
  ) {}

  get pid(): number {
    if (!this.child?.pid) throw new Error(`replica ${this.id} is not running`);
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the exit code when the current process ends. */
  get exited(): Promise<number | null> {
    return this.exitedPromise;
  }

  get peerAddress(): string {
    return `${this.host}:${this.ports.peer}`;
  }

  /** Starts the process and waits for "gateway ready". */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.alive) throw new Error(`replica ${this.id} already runs`);
    const child = spawn(process.execPath, [...(benchHeapFlags() ?? GATEWAY_NODE_FLAGS), CLI, 'run', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    });
    this.child = child;
    running.add(child);
    this.stderr = '';
    this.exitedPromise = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolve(code);
      }),
    );
    let buf = '';
    const onLine = (line: string) => {
      this.logs.push(line);
      appendFileSync(this.logFile, line + '\n');
    };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      appendFileSync(this.logFile, d);
    });
    const from = this.logs.length;
    await waitFor(
      `replica ${this.id} to log "gateway ready"`,
      () => {
        if (!this.alive) throw new Error(`replica ${this.id} exited (${child.exitCode}): ${this.stderr.trim()} ${this.logs.slice(-5).join('\n')}`);
        return this.logs.slice(from).some((l) => l.includes('"gateway ready"'));
      },
      { timeoutMs, intervalMs: 25 },
    ).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n${this.stderr.trim()}\n${this.logs.slice(-10).join('\n')}`);
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.alive) throw new Error(`replica ${this.id} is not running (signal ${sig})`);
    this.child!.kill(sig);
  }

  freeze(): void {
    this.signal('SIGSTOP');
  }

  thaw(): void {
    this.signal('SIGCONT');
  }

  /** kill -9: no goodbye to anyone; the kernel closes its sockets. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child!.kill('SIGCONT');
    this.child!.kill('SIGKILL');
    await this.exitedPromise;
  }

  /** SIGTERM (a drain), SIGKILL after `timeoutMs`; resolves with the exit code. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (!this.alive) return this.child?.exitCode ?? null;
    this.child!.kill('SIGCONT');
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    const code = await this.exitedPromise;
    clearTimeout(timer);
    return code;
  }

  url(urlPath: string): string {
    return `http://${this.host}:${this.ports.http}${urlPath}`;
  }

  /** GET (JSON when it parses) with a short deadline: a frozen replica must not hang a test. */
  async get<T = unknown>(urlPath: string, timeoutMs = 2000): Promise<{ status: number; body: T }> {
    return answer<T>(await fetch(this.url(urlPath), { signal: AbortSignal.timeout(timeoutMs) }));
  }

  async post<T = unknown>(urlPath: string, payload: unknown, timeoutMs = 5000): Promise<{ status: number; body: T }> {
    return answer<T>(
      await fetch(this.url(urlPath), {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs),
      }),
    );
  }

  /** The value of one series of /metrics (0 when absent). */
  async metric(series: string): Promise<number> {
    const { body } = await this.get<string>('/metrics');
    const line = String(body)
      .split('\n')
      .find((l) => l.startsWith(series + ' '));
    return line ? Number(line.slice(series.length + 1)) : 0;
  }

  /** The sum of every series of `name` whose labels include `labels`. */
  async metricSum(name: string, labels: Record<string, string> = {}): Promise<number> {
    const { body } = await this.get<string>('/metrics');
    let sum = 0;
    for (const line of String(body).split('\n')) {
      const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  /** This replica's view of one device (404 → undefined). */
  async device(id: string): Promise<DeviceView | undefined> {
    const r = await this.get<DeviceView>(`/api/devices/${encodeURIComponent(id)}`);
    return r.status === 200 ? r.body : undefined;
  }

  async waitForLog(re: RegExp, { since = 0, timeoutMs = 10_000 }: { since?: number; timeoutMs?: number } = {}): Promise<string> {
    return waitFor(`replica ${this.id} log to match ${re}`, () => this.logs.slice(since).find((l) => re.test(l)), { timeoutMs, intervalMs: 25 });
  }
}

export interface DeviceView {
  id: string;
  state: 'connected' | 'disconnected';
  replica?: string;
  sessions?: number;
  remoteAddress?: string;
  port?: number | null;
}

export interface ReplicaView {
  id: string;
  peer: string;
  devices: number;
  since: string;
}

export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly redis: TestRedis,
    readonly replicas: Replica[],
    readonly ports: ClusterPorts,
    readonly hostKey: KeyPair,
    readonly inventoryFile: string,
    readonly usersFile: string,
  ) {}

  get secretsDir(): string {
    return path.join(this.dir, 'secrets');
  }

  static async start(o: ClusterOptions): Promise<TestCluster> {
    const dir = mkdtempSync(path.join(tmpdir(), 'chgw-cluster-'));
    const first = o.firstAddress ?? 2;
    const hosts = Array.from({ length: o.replicas }, (_, i) => `127.0.0.${first + i}`);
    const ports = await commonPorts(hosts, o.portRange ?? 0);
    const redis = await startRedis();
    const inventoryFile = path.join(dir, 'devices.yaml');
    const usersFile = path.join(dir, 'users.yaml');
    writeFileSync(inventoryFile, typeof o.inventory === 'function' ? o.inventory(ports) : o.inventory);
    // Approvals may name key files here (onboarding.secretsDir), as an operator's Secret mount.
    const secretsDir = path.join(dir, 'secrets');
    mkdirSync(secretsDir, { mode: 0o700 });
    writeFileSync(usersFile, o.users);
    // One northbound host key for every replica (cluster mode refuses a generated one).
    const hostKey = await generateKeyPair(path.join(dir, 'northbound_host_key'), 'cluster-northbound');

    // One CA; a peer certificate per replica issued from it.
    const caConfig = path.join(dir, 'ca.json');
    writeFileSync(caConfig, JSON.stringify({ stateDir: path.join(dir, 'ca') }));
    await cli(['certs', 'init', '--config', caConfig]);
    const peerDirs = hosts.map((_, i) => path.join(dir, `r${i + 1}`, 'peer'));
    for (const d of peerDirs) mkdirSync(d, { recursive: true });
    await Promise.all(peerDirs.map((d) => cli(['certs', 'peer', '--out', d, '--config', caConfig])));

    const replicas: Replica[] = [];
    for (const [i, host] of hosts.entries()) {
      const id = `r${i + 1}`;
      const rdir = path.join(dir, id);
      const peerDir = peerDirs[i]!;
      const config = {
        stateDir: path.join(rdir, 'state'),
        log: { level: 'debug' },
        inventory: { file: inventoryFile },
        users: { file: usersFile },
        callhome: {
          ssh: { host, port: ports.callhome },
          tls: { enabled: false },
          // All devices (and HAProxy) come from loopback: no per-source throttling in tests.
          perSourceMaxStartups: 0,
          maxStartups: '1000:30:1000',
        },
        northbound: {
          host,
          port: ports.northbound,
          hostKeyFile: hostKey.privateKeyFile,
          perSourceMaxStartups: 0,
          maxStartups: '1000:30:1000',
          waitForDevice: o.waitForDevice ?? 0,
          ...(ports.range ? { portRange: `${ports.range[0]}-${ports.range[1]}` } : {}),
        },
        http: { host, port: ports.http, adminToken: ADMIN_TOKEN },
        onboarding: { secretsDir },
        audit: { file: path.join(rdir, 'audit.jsonl') },
        shutdown: { grace: o.grace ?? 5 },
        cluster: {
          redis: { url: redis.url },
          replicaId: id,
          leaseTtl: o.leaseTtl ?? 3,
          peer: {
            host,
            port: ports.peer,
            advertise: `${host}:${ports.peer}`,
            caFile: path.join(peerDir, 'ca.crt'),
            certFile: path.join(peerDir, 'peer.crt'),
            keyFile: path.join(peerDir, 'peer.key'),
          },
        },
      };
      const configFile = path.join(rdir, 'gateway.json');
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      replicas.push(new Replica(i, id, host, ports, configFile, path.join(rdir, 'gateway.log'), o.env));
    }
    const cluster = new TestCluster(dir, redis, replicas, ports, hostKey, inventoryFile, usersFile);
    try {
      await Promise.all(replicas.map((r) => r.start()));
      await cluster.waitForReplicas(o.replicas);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  replica(id: string): Replica {
    const r = this.replicas.find((x) => x.id === id);
    if (!r) throw new Error(`no replica ${id}`);
    return r;
  }

  get live(): Replica[] {
    return this.replicas.filter((r) => r.alive);
  }

  /** Waits until every live replica lists `n` live replicas in /api/replicas. */
  async waitForReplicas(n: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `${n} replicas in /api/replicas`,
      async () => {
        for (const r of this.live) {
          const { status, body } = await r.get<ReplicaView[]>('/api/replicas');
          if (status !== 200 || !Array.isArray(body) || body.length !== n) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /**
   * Waits until `device` is connected and every live replica (those in `askAll`, default all
   * live ones) names the same owner; resolves that owner's replica.
   */
  async waitForOwner(device: string, { timeoutMs = 15_000, not, ask }: { timeoutMs?: number; not?: string; ask?: Replica[] } = {}): Promise<Replica> {
    const id = await waitFor(
      `an owner of ${device} agreed on by every replica${not ? ` other than ${not}` : ''}`,
      async () => {
        const views = await Promise.all((ask ?? this.live).map((r) => r.device(device)));
        const owners = new Set(views.map((v) => (v?.state === 'connected' ? v.replica : undefined)));
        if (owners.size !== 1) return undefined;
        const [owner] = owners;
        return owner && owner !== not ? owner : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
    return this.replica(id);
  }

  /** Log lines of every replica outside docs/LOGS.md's schema. */
  logProblems(): string[] {
    return this.replicas.flatMap((r) => {
      let audit: string[] = [];
      try {
        audit = readFileSync(path.join(path.dirname(r.configFile), 'audit.jsonl'), 'utf8').split('\n');
      } catch {
        /* no audit yet */
      }
      return logProblems([...r.logs, ...audit]).map((p) => `${r.id}: ${p}`);
    });
  }

  /** stop(), then throws if any replica wrote a line outside docs/LOGS.md: for test.after.always. */
  async close(): Promise<void> {
    const problems = this.logProblems();
    await this.stop();
    if (problems.length) throw new Error(`log lines outside docs/LOGS.md:\n${problems.join('\n')}`);
  }

  /** Stops every replica it started (SIGTERM, then SIGKILL) and Redis; removes the directory. */
  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop(5000).catch(() => undefined)));
    await this.redis.close();
    if (!process.env.PEERS_KEEP_TMP) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Status and body (JSON when it parses, else text such as /metrics). */
async function answer<T>(res: Response): Promise<{ status: number; body: T }> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    return { status: res.status, body: text as T };
  }
}

/** Runs the CLI once (certs …); throws with its output when it fails. */
async function cli(args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...args]);
  if (r.code !== 0) throw new Error(`callhome-gateway ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
  return r.stdout;
}
