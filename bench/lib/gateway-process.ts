// The gateway as its own process (`node dist/src/cli/main.js run`), as it runs in production:
// its memory and CPU are read from /proc, its ports from the "gateway ready" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds } from './proc.js';
import { GATEWAY_NODE_FLAGS } from '../../src/heap.js';
import { waitFor } from '../../test/helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface GatewayProcessOptions {
  inventory: string;
  users: string;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory. */
  cpuProfileDir?: string;
  /** node's heap flags for the gateway: GATEWAY_NODE_FLAGS, as in production, unless given */
  heapFlags?: readonly string[];
  /** more node flags (e.g. --import a preload) */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export interface ProcStats {
  rssBytes: number;
  /** user + system CPU seconds so far */
  cpuSeconds: number;
}

export class GatewayProcess {
  readonly logs: string[] = [];
  callhomePort = 0;
  northboundPort = 0;
  httpPort = 0;
  nativeCrypto: boolean | undefined;
  /** the heap flags the gateway said at start it runs with, or is missing (src/heap.ts) */
  heapReport: { inEffect: boolean; flags: string[] } | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
  ) {}

  static async start(o: GatewayProcessOptions): Promise<GatewayProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'chgw-bench-gw-'));
    const inventoryFile = join(dir, 'devices.yaml');
    const usersFile = join(dir, 'users.yaml');
    writeFileSync(inventoryFile, o.inventory);
    writeFileSync(usersFile, o.users);
    // launched as in production (the image's ENTRYPOINT, `npm start`): with the gateway's node flags
    const nodeArgs = [
      ...(o.heapFlags ?? benchHeapFlags() ?? GATEWAY_NODE_FLAGS),
      ...(o.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfileDir] : []),
      ...(o.nodeArgs ?? []),
    ];
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CHGW_STATEDIR: join(dir, 'state'),
        CHGW_INVENTORY_FILE: inventoryFile,
        CHGW_USERS_FILE: usersFile,
        CHGW_CALLHOME_SSH_HOST: '127.0.0.1',
        CHGW_CALLHOME_SSH_PORT: '0',
        CHGW_NORTHBOUND_HOST: '127.0.0.1',
        CHGW_NORTHBOUND_PORT: '0',
        CHGW_HTTP_HOST: '127.0.0.1',
        CHGW_HTTP_PORT: '0',
        CHGW_LOG_LEVEL: 'info',
        // The TLS listener is not benchmarked here, and would compete for the fixed port 4335.
        CHGW_CALLHOME_TLS_ENABLED: 'false',
        // The admission limits guard against strangers; a benchmark that opens thousands of
        // devices and a hundred managers from 127.0.0.1 on purpose lifts them, so the figures
        // measure the gateway's work rather than its throttling.
        CHGW_CALLHOME_MAXSTARTUPS: '100000',
        CHGW_CALLHOME_PERSOURCEMAXSTARTUPS: '0',
        CHGW_NORTHBOUND_MAXSTARTUPS: '100000',
        CHGW_NORTHBOUND_PERSOURCEMAXSTARTUPS: '0',
        CHGW_NORTHBOUND_MAXSESSIONSPERUSER: '100000',
        CHGW_LIMITS_MAXDEVICES: '100000',
        ...o.env,
      },
    });
    const gw = new GatewayProcess(child, dir);
    let buf = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${stderr.trim()} ${gw.logs.slice(-3).join(' ')}`)));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          // keep the log small at 10,000 devices: only what is not per-device chatter
          if (gw.logs.length < 2000) gw.logs.push(line);
          let rec: { msg?: string; nativeCrypto?: boolean; level?: string; nodeFlags?: string[]; callhomeSsh?: string; northbound?: string; http?: string };
          try {
            rec = JSON.parse(line);
          } catch {
            continue;
          }
          if (typeof rec.nativeCrypto === 'boolean') gw.nativeCrypto = rec.nativeCrypto;
          if (Array.isArray(rec.nodeFlags)) gw.heapReport = { inEffect: rec.level === 'info', flags: rec.nodeFlags };
          if (rec.msg === 'gateway ready') {
            gw.callhomePort = Number(rec.callhomeSsh!.split(':').pop());
            gw.northboundPort = Number(rec.northbound!.split(':').pop());
            gw.httpPort = Number(rec.http!.split(':').pop());
            resolve();
          }
        }
      });
    });
    child.removeAllListeners('exit');
    return gw;
  }

  /**
   * Throws unless the gateway logged that ssh2's native crypto binding is in use: without it
   * ssh2 falls back to JavaScript crypto at about half the speed, and every figure would mislead.
   */
  assertNativeCrypto(): void {
    if (this.nativeCrypto !== true) {
      throw new Error(
        `the gateway reports that ssh2's native crypto binding is NOT in use (nativeCrypto: ${String(this.nativeCrypto)}): ` +
          'benchmark figures would be meaningless; rebuild ssh2 (npm rebuild ssh2) with a C++ toolchain',
      );
    }
  }

  /**
   * Throws unless the gateway said at start that it runs with the heap flags it is launched
   * with in production (src/heap.ts): without them, a process may carry bulk at up to twice the CPU.
   */
  assertHeapSettings(): void {
    if (benchHeapFlags() !== undefined) return; // a comparison run (npm run bench -- --heap-flags)
    if (this.heapReport?.inEffect !== true) {
      throw new Error(`the gateway runs without ${this.heapReport?.flags.join(' ') ?? 'a heap report'}, which it is launched with in production (${GATEWAY_NODE_FLAGS.join(' ')})`);
    }
  }

  stats(): ProcStats {
    const pid = this.child.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+([0-9]+)/.exec(status)?.[1] ?? 0);
    return { rssBytes: rssKb * 1024, cpuSeconds: processCpuSeconds(pid) };
  }

  async metricsText(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
  }

  async metric(name: string): Promise<number> {
    const text = await this.metricsText();
    const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
    return line ? Number(line.split(' ').pop()) : NaN;
  }

  /** Polls /metrics until the gateway counts `n` connected devices; resolves with the time it saw that. */
  async waitForConnected(n: number, timeoutMs: number): Promise<number> {
    let connected = 0;
    await waitFor(
      `${n} devices connected`,
      async () => {
        const text = await this.metricsText();
        connected = Number(/^callhome_devices_connected\{transport="ssh"\} ([0-9.]+)$/m.exec(text)?.[1]);
        return connected >= n;
      },
      { timeoutMs, intervalMs: n > 2000 ? 500 : 100 },
    ).catch(() => {
      throw new Error(`only ${connected} of ${n} devices connected after ${timeoutMs / 1000} s`);
    });
    return Date.now();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The heap flags of a comparison run (`npm run bench -- --heap-flags "…"`), which replace GATEWAY_NODE_FLAGS in every gateway it starts. */
export function benchHeapFlags(): string[] | undefined {
  const flags = process.env.BENCH_GATEWAY_HEAP_FLAGS;
  return flags === undefined ? undefined : flags.split(' ').filter(Boolean);
}
