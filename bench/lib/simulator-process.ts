// `callhome-gateway simulate` in its own process, so the devices' CPU and memory are not
// counted as the gateway's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface SimulatorOptions {
  count: number;
  seed: string;
  rate: number;
  replySize?: number;
  username?: string;
  password?: string;
}

function commonArgs(o: SimulatorOptions): string[] {
  return ['--count', String(o.count), '--seed', o.seed, '--username', o.username ?? 'admin', '--password', o.password ?? 'admin'];
}

/** The inventory the simulator's devices will match (same seed, same keys). */
export function writeSimulatorInventory(o: SimulatorOptions, file: string): void {
  const r = spawnSync(process.execPath, [CLI, 'simulate', ...commonArgs(o), '--write-inventory', file, '--inventory-only'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`simulate --inventory-only failed: ${r.stderr}`);
}

export class SimulatorProcess {
  stdout = '';
  stderr = '';
  /** Resolves with the simulator's "all connected in X s" line. */
  readonly allConnected: Promise<string>;
  private constructor(readonly child: ChildProcess) {
    this.allConnected = new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        this.stdout += d.toString();
        const m = /^simulate: .*all connected in .*$/m.exec(this.stdout);
        if (m) resolve(m[0]);
      });
      child.once('exit', (code) => reject(new Error(`simulator exited (${code}) before all devices connected: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`)));
    });
    this.allConnected.catch(() => undefined);
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 100_000) this.stderr = this.stderr.slice(-50_000);
    });
  }

  static start(o: SimulatorOptions, gatewayPort: number, gatewayHost = '127.0.0.1'): SimulatorProcess {
    const args = [CLI, 'simulate', ...commonArgs(o), '--gateway', `${gatewayHost}:${gatewayPort}`, '--rate', String(o.rate), '--persistent'];
    if (o.replySize) args.push('--reply-size', String(o.replySize));
    return new SimulatorProcess(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}
