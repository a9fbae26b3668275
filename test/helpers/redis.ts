// A real redis-server (Debian's) for cluster-mode tests: its own process on a free loopback
// port, no persistence, stopped when the test process ends. stop()/start() restart it on
// the same port, so tests can take Redis away mid-test and bring it back (empty, as a
// restarted Redis without persistence is).
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { BIN } from '../e2e/peers/constants.js';
import { freePort, sleep } from '../e2e/peers/util.js';

export interface TestRedis {
  host: string;
  port: number;
  /** redis://host:port/0, for cluster.redis.url. */
  url: string;
  /** Runs one command (inline protocol) and returns the raw reply text. */
  command(...args: string[]): Promise<string>;
  /** Stops the server (SIGKILL: no goodbye to clients, as a crash or a network cut looks). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Sends a signal to the server (SIGSTOP freezes it: connected clients get no answer). */
  signal(sig: NodeJS.Signals): void;
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts redis-server on a free port of `host` (default 127.0.0.1). */
export async function startRedis(host = '127.0.0.1'): Promise<TestRedis> {
  const port = await freePort(host);
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const c = spawn(BIN.redisServer, ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    running.add(c);
    c.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    c.once('exit', () => running.delete(c));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}: ${output.trim()}`);
      try {
        if ((await command('PING')).startsWith('+PONG')) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on ${host}:${port}: ${output.trim()}`);
      await sleep(50);
    }
  };

  const command = (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = createConnection({ host, port });
      let reply = '';
      s.setTimeout(2000, () => s.destroy(new Error('redis command timed out')));
      s.on('connect', () => s.write(args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ') + '\r\n'));
      s.on('data', (d: Buffer) => {
        reply += d.toString();
        // One reply: a simple line, or a bulk/array whose parts have arrived (good enough for tests).
        if (/\r\n$/.test(reply)) {
          s.end();
          resolve(reply);
        }
      });
      s.on('error', reject);
    });

  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    host,
    port,
    url: `redis://${host}:${port}/0`,
    command,
    stop,
    start: launch,
    signal: (sig) => void child?.kill(sig),
    close: stop,
  };
}
