// HAProxy (Debian's) as the L4 load balancer in front of the replicas, as a deployment has
// it: mode tcp, one frontend for call home and one for northbound on free 127.0.0.1 ports,
// the replicas as backends, health checks on each replica's /readyz (so a draining or dead
// replica leaves the rotation). Its own config in a temp dir; run in the foreground (-db)
// as a child process and stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN } from '../e2e/peers/constants.js';
import { createServer } from 'node:net';
import { freePort, run, waitFor } from '../e2e/peers/util.js';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface Backend {
  name: string;
  host: string;
  /** the port HAProxy forwards to (call home or northbound) */
  callhome: number;
  northbound: number;
  /** the replica's HTTP port: health checks ask /readyz there */
  http: number;
}

export interface TestHaproxy {
  host: string;
  callhomePort: number;
  northboundPort: number;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

export function haproxyConfig(o: { host: string; callhomePort: number; northboundPort: number; backends: Backend[] }): string {
  const servers = (port: (b: Backend) => number) =>
    // inter 300ms / fall 2: a dead or draining replica is out of the rotation within a second.
    o.backends.map((b) => `  server ${b.name} ${b.host}:${port(b)} check port ${b.http} inter 300ms fall 2 rise 2`).join('\n');
  return `global
  maxconn 2000

defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  # a connection refused by a replica that just died goes to another one
  retries 2
  option redispatch
  option httpchk GET /readyz
  http-check expect status 200

frontend callhome
  bind ${o.host}:${o.callhomePort}
  default_backend callhome

backend callhome
  balance roundrobin
${servers((b) => b.callhome)}

frontend northbound
  bind ${o.host}:${o.northboundPort}
  default_backend northbound

backend northbound
  balance roundrobin
${servers((b) => b.northbound)}
`;
}

/** Starts HAProxy in front of `backends`; resolves once both frontends accept connections. */
export async function startHaproxy(backends: Backend[], host = '127.0.0.1'): Promise<TestHaproxy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-haproxy-'));
  const callhomePort = await freePort(host);
  const northboundPort = await freePort(host);
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ host, callhomePort, northboundPort, backends }));
  const check = await run(BIN.haproxy, ['-c', '-f', cfg]);
  if (check.code !== 0) throw new Error(`haproxy -c rejected ${cfg}: ${check.stderr.trim()} ${check.stdout.trim()}`);
  const child = spawn(BIN.haproxy, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'haproxy frontends to listen',
      async () => {
        if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${out.trim()}`);
        // Bound once we cannot bind: a probe connection would reach a replica as a failed handshake.
        return (await taken(host, callhomePort)) && (await taken(host, northboundPort));
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, callhomePort, northboundPort, pid: child.pid!, output: () => out, stop };
}

function taken(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(false)));
  });
}
