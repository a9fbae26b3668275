// Small building blocks for end-to-end tests against real peers: temp dirs, child processes
// that cannot outlive the test process, and SSH fingerprints computed the way `ssh-keygen -lf` prints them.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
export { PEERS_STATE_DIR } from './constants.js';
export { freePort, sleep, waitFor, withTimeout, type WaitOptions } from '../../helpers/wait.js';
import { sleep, withTimeout } from '../../helpers/wait.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const currentUser = userInfo().username;

/** The repository root (the directory holding package.json), from src or dist alike. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repoRoot: no package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** True when something accepts TCP connections on host:port. */
export function tcpProbe(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

// ---------------------------------------------------------------------------------------
// Temp dirs and child processes, both cleaned up even when a test forgets to.

const tempDirs = new Set<string>();
/** Process groups (negative pids) of detached children that must not outlive this process. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Ctrl-C or a kill of the test process: clean up, then die of the same signal.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killLiveGroups();
      process.kill(process.pid, sig);
    });
  }
  process.on('exit', () => {
    killLiveGroups();
    if (!process.env.PEERS_KEEP_TMP) {
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    }
  });
}

function killLiveGroups(): void {
  for (const pid of liveGroups) {
    for (const pg of [pid, ...descendantGroups(pid)]) {
      try {
        process.kill(-pg, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  liveGroups.clear();
}

/** A fresh directory under the OS temp dir, removed at process exit (unless PEERS_KEEP_TMP=1). */
export function makeTempDir(prefix = 'chgw-peer-'): string {
  installExitHook();
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  if (!process.env.PEERS_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A detached child in its own process group, killed (whole group) if this process exits. */
export interface GroupChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  readonly hasExited: boolean;
  /** Signals the whole process group; false if it was already gone. */
  signal(sig: NodeJS.Signals): boolean;
}

export function spawnGroup(cmd: string, args: string[], opts: SpawnOptions = {}): GroupChild {
  installExitHook();
  const child = spawn(cmd, args, { stdio: 'ignore', ...opts, detached: true });
  if (child.pid === undefined) throw new Error(`spawn ${cmd} failed`);
  const pid = child.pid;
  liveGroups.add(pid);
  let hasExited = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      // The leader is gone, but children in its group (sshd's session process) may live
      // on; the exit hook still reaps the group. Forget it only once the group is empty.
      if (!groupAlive(pid)) liveGroups.delete(pid);
      resolve({ code, signal });
    });
    child.once('error', () => {
      hasExited = true;
      liveGroups.delete(pid);
      resolve({ code: null, signal: null });
    });
  });
  return {
    child,
    pid,
    exited,
    get hasExited() {
      return hasExited;
    },
    signal(sig) {
      try {
        process.kill(-pid, sig);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Does any process of group `pgid` still exist? */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Process groups of everything below `pid` (from /proc), excluding `pid`'s own group.
 * sshd in daemon mode gives every connection its own session (setsid), so stopping the
 * listener's group alone would leave live sessions behind.
 */
export function descendantGroups(pid: number): number[] {
  const children = new Map<number, { pid: number; pgid: number }[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may contain spaces and parens.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      const list = children.get(ppid) ?? [];
      list.push({ pid: Number(entry), pgid: Number(f[2]) });
      children.set(ppid, list);
    } catch {
      /* exited */
    }
  }
  const own = (() => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    } catch {
      return pid;
    }
  })();
  const groups = new Set<number>();
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      if (c.pgid !== own) groups.add(c.pgid);
      walk(c.pid);
    }
  };
  walk(pid);
  return [...groups];
}

function signalGroups(groups: number[], sig: NodeJS.Signals): void {
  for (const pg of groups) {
    try {
      process.kill(-pg, sig);
    } catch {
      /* gone */
    }
  }
}

/**
 * SIGTERM (plus SIGCONT, in case it is frozen) the group and the groups of its descendants,
 * SIGKILL what is left after `graceMs`.
 */
export async function terminateGroup(g: GroupChild, graceMs = 2000): Promise<void> {
  const groups = [g.pid, ...descendantGroups(g.pid)];
  signalGroups(groups, 'SIGTERM');
  signalGroups(groups, 'SIGCONT');
  const alive = (): boolean => groups.some((pg) => groupAlive(pg));
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(25);
  if (alive()) signalGroups(groups, 'SIGKILL');
  while (alive() && Date.now() < deadline + 2000) await sleep(25);
  if (g.child.exitCode === null && g.child.signalCode === null) await g.exited;
  if (!groupAlive(g.pid)) liveGroups.delete(g.pid);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after timeoutMs), collecting its output. */
export function run(cmd: string, args: string[], { input, timeoutMs = 30_000, env }: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its input */
    });
    child.stdin.end(input ?? '');
  });
}

// ---------------------------------------------------------------------------------------
// SSH keys and fingerprints.

export interface KeyPair {
  privateKeyFile: string;
  publicKeyFile: string;
  /** "ssh-ed25519 AAAA... comment" */
  publicKeyLine: string;
  /** "SHA256:..." exactly as `ssh-keygen -lf` prints it */
  fingerprint: string;
}

/** Generates an unencrypted ed25519 key pair with ssh-keygen at `file` / `file.pub`. */
export async function generateKeyPair(file: string, comment = 'chgw-test'): Promise<KeyPair> {
  const gen = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  if (gen.code !== 0) throw new Error(`ssh-keygen -f ${file} failed: ${gen.stderr.trim()}`);
  const publicKeyLine = readFileSync(`${file}.pub`, 'utf8').trim();
  return {
    privateKeyFile: file,
    publicKeyFile: `${file}.pub`,
    publicKeyLine,
    fingerprint: await sshKeygenFingerprint(`${file}.pub`),
  };
}

/** The "SHA256:..." field of `ssh-keygen -lf FILE`. */
export async function sshKeygenFingerprint(publicKeyFile: string): Promise<string> {
  const r = await run('/usr/bin/ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyFile]);
  const fp = r.stdout.split(/\s+/)[1];
  if (r.code !== 0 || !fp?.startsWith('SHA256:')) {
    throw new Error(`ssh-keygen -lf ${publicKeyFile} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return fp;
}

/** Fingerprint of an SSH public key blob (the wire format ssh2 hands to hostVerifier). */
export function fingerprintOfKeyBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Fingerprint of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function fingerprintOfPublicKeyLine(line: string): string {
  const b64 = line.trim().split(/\s+/)[1];
  if (!b64) throw new Error(`not an OpenSSH public key line: ${line}`);
  return fingerprintOfKeyBlob(Buffer.from(b64, 'base64'));
}

// ---------------------------------------------------------------------------------------
// A throwaway TCP listener, e.g. to stand in for the gateway's call-home port.

export interface TestListener {
  readonly host: string;
  readonly port: number;
  /** the next accepted socket (queued if it arrived before the call) */
  accept(timeoutMs?: number): Promise<Socket>;
  /** stops listening and destroys every accepted socket */
  close(): Promise<void>;
}

export async function listenTcp(host = '127.0.0.1', port = 0): Promise<TestListener> {
  const queue: Socket[] = [];
  const waiters: ((s: Socket) => void)[] = [];
  const all = new Set<Socket>();
  const srv: Server = createServer((s) => {
    all.add(s);
    s.once('close', () => all.delete(s));
    const w = waiters.shift();
    if (w) w(s);
    else queue.push(s);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  const addr = srv.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    host,
    port: bound,
    accept(timeoutMs = 10_000) {
      const s = queue.shift();
      if (s) return Promise.resolve(s);
      let w!: (s: Socket) => void;
      const p = new Promise<Socket>((resolve) => {
        w = resolve;
        waiters.push(w);
      });
      return withTimeout(p, timeoutMs, `a connection on ${host}:${bound}`).catch((err: unknown) => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        throw err;
      });
    },
    close() {
      for (const s of all) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}
