// One harness netconfd per machine (and user), behind NCXSERVER_SOCK, shared by every test process.
// Several ava workers call ensureNetconfd() at once: a mkdir lock makes exactly one of them
// start it, detached, so it outlives the test file that started it. Each caller leaves a
// lease (lease.ts); a detached reaper (netconfd-reaper.ts) stops netconfd once no lease
// holder is left, so a test run does not leave it behind, nor stop it under another run.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, NCXSERVER_SOCK, PEERS_STATE_DIR } from './constants.js';
import { cmdline, takeLease } from './lease.js';
import { currentUser, pidAlive, sleep, waitFor } from './util.js';

export * from './xml.js';

/** YANG modules loaded at start: an editable config tree for edit-config/commit tests. */
export const NETCONFD_MODULES = ['ietf-interfaces', 'iana-if-type'] as const;

const STATE = join(PEERS_STATE_DIR, 'netconfd');
const LOCK = join(PEERS_STATE_DIR, 'netconfd.lock');
export const PID_FILE = join(STATE, 'netconfd.pid');
const REAPER_PID_FILE = join(STATE, 'reaper.pid');
/** The pid of the netconfd this harness started (an older harness leaves none: never reaped). */
const MANAGED_FILE = join(STATE, 'netconfd.managed');
const REAPER = fileURLToPath(new URL('./netconfd-reaper.js', import.meta.url));
/** netconfd's own log (--log-level=debug, appended across restarts). */
export const NETCONFD_LOG = join(STATE, 'netconfd.log');
/** What netconfd prints before its log is open (argument errors). */
const NETCONFD_OUT = join(STATE, 'netconfd.out');

/**
 * Lines netconfd writes to NETCONFD_LOG at --log-level=debug. <close-session> is only logged
 * at debug (at info you only see "Session N closed"), hence the level.
 */
export const NETCONFD_LOG_PATTERNS = {
  /** Session 3 for root@127.0.0.1 now active (base:1.1) */
  sessionActive: /Session (\d+) for (\S+)@(\S+) now active \(base:(1\.[01])\)/,
  /** agt_rpc: <close-session> for 3=root@127.0.0.1 (m:101) [...] */
  closeSession: /agt_rpc: <close-session> for (\d+)=(\S+)@(\S+) \(m:([^)]*)\)/,
  /** any rpc: agt_rpc: <edit-config> for 3=root@127.0.0.1 (m:101) */
  rpc: /agt_rpc: <([\w:-]+)> for (\d+)=(\S+)@(\S+) \(m:([^)]*)\)/,
  /**
   * the transport went away without <close-session>: an orderly EOF ("shut by remote
   * peer"), or a reset ("ses read failed ... Connection reset by peer", then this line)
   */
  droppedByPeer: /(?:ses: session (\d+) shut by remote peer|agt_ncxserver: input failed for session (\d+))/,
  /** the end of every session, however it ended */
  sessionClosed: /Session (\d+) closed/,
} as const;

export interface NetconfdInfo {
  socketPath: string;
  logFile: string;
  /** pid of the netconfd serving the socket, when known */
  pid: number | undefined;
  /** true when this call started it */
  started: boolean;
}

/**
 * What connecting to netconfd's socket says. 'busy': its listen backlog is full (EAGAIN) or the
 * connection is not taken in time, which a loaded netconfd does while it works through a burst
 * of sessions: it is serving, and must not be taken for dead.
 */
type Probe = 'up' | 'busy' | 'absent' | 'refused';

function probe(path = NCXSERVER_SOCK, timeoutMs = 1000): Promise<Probe> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve('absent');
    const s = connect(path);
    const done = (p: Probe): void => {
      s.destroy();
      resolve(p);
    };
    s.setTimeout(timeoutMs, () => done('busy'));
    s.once('connect', () => done('up'));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' ? 'absent' : err.code === 'EAGAIN' ? 'busy' : 'refused'));
  });
}

/** Someone listens on the socket: it answered, or is too busy to take one more connection now. */
const serving = (p: Probe): boolean => p === 'up' || p === 'busy';

function readPid(): number | undefined {
  try {
    const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The netconfd serving our socket, found by its command line (pid file first). */
export function runningNetconfd(): { pid: number; args: string[] } | undefined {
  const read = (pid: number): { pid: number; args: string[] } | undefined => {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'netconfd') return undefined;
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
      return args.includes(`--ncxserver-sockname=${NCXSERVER_SOCK}`) ? { pid, args } : undefined;
    } catch {
      return undefined; // exited, or not ours to read
    }
  };
  const fromFile = readPid();
  const hit = fromFile ? read(fromFile) : undefined;
  if (hit) return hit;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const p = read(Number(entry));
    if (p) return p;
  }
  return undefined;
}

/** The command line the harness runs netconfd with. */
function netconfdArgs(): string[] {
  return [
    `--ncxserver-sockname=${NCXSERVER_SOCK}`,
    // Fresh, empty config on every start; tests create (and delete) what they need.
    '--no-startup',
    `--superuser=${currentUser}`,
    // Devices log in as root (or the harness user) and as the password test user; NACM
    // would deny the latter any write, and access control is not what these tests are about.
    '--access-control=off',
    `--log=${NETCONFD_LOG}`,
    '--log-append',
    // <close-session> and "shut by remote peer" are only logged at debug.
    '--log-level=debug',
    ...NETCONFD_MODULES.map((m) => `--module=${m}`),
  ];
}

const sameArgs = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  // netconfd removes its socket on SIGTERM, but not at once.
  await waitFor('netconfd to exit', () => !pidAlive(pid), { timeoutMs: 10_000 }).catch(() => {
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  });
}

// --- the cross-process lock: mkdir is atomic --------------------------------------------

const LOCK_STALE_MS = 60_000;

export function tryLock(): boolean {
  try {
    mkdirSync(LOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  writeFileSync(join(LOCK, 'owner'), String(process.pid));
  return true;
}

export function unlock(): void {
  rmSync(LOCK, { recursive: true, force: true });
}

/** Removes the lock if its owner died or it is older than LOCK_STALE_MS. */
function breakStaleLock(): void {
  let owner: number | undefined;
  let ageMs = 0;
  try {
    ageMs = Date.now() - statSync(LOCK).mtimeMs;
    owner = Number(readFileSync(join(LOCK, 'owner'), 'utf8'));
  } catch {
    // lock gone, or the owner file not written yet: judge by age only
  }
  const ownerDead = owner !== undefined && Number.isInteger(owner) && owner > 0 && !pidAlive(owner);
  if (ownerDead || ageMs > LOCK_STALE_MS) {
    // Rename first: only one breaker wins, nobody removes a lock taken in between.
    const aside = `${LOCK}.stale.${process.pid}.${Date.now()}`;
    try {
      renameSync(LOCK, aside);
      rmSync(aside, { recursive: true, force: true });
    } catch {
      /* someone else broke or released it */
    }
  }
}

// ---------------------------------------------------------------------------------------

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

async function startNetconfd(): Promise<number> {
  mkdirSync(STATE, { recursive: true });
  // netconfd refuses to start while its socket file exists, even a stale one left by a
  // killed netconfd ("Cannot connect to ncxserver socket"); we only get here once probe()
  // said nobody listens.
  try {
    unlinkSync(NCXSERVER_SOCK);
  } catch {
    /* absent */
  }
  // Even with --no-startup netconfd saves running on every commit to
  // $YUMA_HOME/data/startup-cfg.xml (else ~/.yuma/): keep that out of the user's home.
  const yumaHome = join(STATE, 'yuma-home');
  rmSync(yumaHome, { recursive: true, force: true });
  mkdirSync(join(yumaHome, 'data'), { recursive: true });

  const args = netconfdArgs();
  const out = openSync(NETCONFD_OUT, 'w');
  const child = spawn(BIN.netconfd, args, {
    cwd: STATE,
    detached: true,
    stdio: ['ignore', out, out],
    // Its own TMPDIR: it outlives the test run that started it, and that run's TMPDIR with it.
    env: { ...process.env, YUMA_HOME: yumaHome, TMPDIR: STATE },
  });
  closeSync(out);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.once('error', (err) => (exited = `failed to start: ${err.message}`));
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`netconfd failed to start; ${NETCONFD_OUT}:\n${tail(NETCONFD_OUT)}`);
  writeFileSync(PID_FILE, String(pid));
  writeFileSync(MANAGED_FILE, String(pid));
  try {
    await waitFor(
      'netconfd to accept on ' + NCXSERVER_SOCK,
      async () => {
        if (exited) throw new Error(exited);
        return (await probe()) === 'up';
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
  } catch (err) {
    await stopPid(pid); // not left running when it did not come up
    throw new Error(`netconfd did not come up: ${(err as Error).message}\n--- ${NETCONFD_LOG} (tail):\n${tail(NETCONFD_LOG)}` + `\n--- ${NETCONFD_OUT}:\n${tail(NETCONFD_OUT)}`);
  }
  return pid;
}

// --- the reaper ---------------------------------------------------------------------------

/** The pid of netconfd when this harness started it, so that the reaper may stop it. */
export function managedPid(): number | undefined {
  try {
    return Number(readFileSync(MANAGED_FILE, 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}

function reaperAlive(): boolean {
  try {
    const pid = Number(readFileSync(REAPER_PID_FILE, 'utf8'));
    return cmdline(pid).includes(REAPER);
  } catch {
    return false;
  }
}

/** Starts the reaper unless one runs; called under the lock, so there is one at most. */
function ensureReaper(): void {
  if (reaperAlive()) return;
  const child = spawn(process.execPath, [REAPER], { detached: true, stdio: 'ignore', cwd: STATE });
  child.unref();
  if (child.pid !== undefined) writeFileSync(REAPER_PID_FILE, String(child.pid));
}

/** The reaper's pid file, removed when it is still `pid`'s (the reaper ending). */
export function releaseReaperPid(pid: number): void {
  try {
    if (Number(readFileSync(REAPER_PID_FILE, 'utf8')) === pid) rmSync(REAPER_PID_FILE, { force: true });
  } catch {
    /* gone */
  }
}

/**
 * Makes sure the harness's netconfd serves NCXSERVER_SOCK, starting one (detached, so it
 * outlives this test file; logging to NETCONFD_LOG) when none does, or restarting one that
 * runs with other arguments (an older harness). Safe to call from many processes at once.
 * Leaves a lease for this run first; the reaper stops netconfd once every lease is gone.
 */
export async function ensureNetconfd({ timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<NetconfdInfo> {
  mkdirSync(PEERS_STATE_DIR, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  const want = netconfdArgs();
  const info = (pid: number | undefined, started: boolean): NetconfdInfo => ({
    socketPath: NCXSERVER_SOCK,
    logFile: NETCONFD_LOG,
    pid,
    started,
  });
  // The lease comes before the look at netconfd, and the look ends with "nobody holds the
  // lock": the reaper takes the lock before it reads the leases, so either it sees this
  // lease or this call sees its lock and waits for it.
  takeLease();
  for (;;) {
    const up = serving(await probe());
    const running = up ? runningNetconfd() : undefined;
    const reaped = !running || running.pid !== managedPid() || reaperAlive();
    if (up && (!running || sameArgs(running.args, want)) && !existsSync(LOCK) && reaped) {
      return info(running?.pid, false);
    }
    if (tryLock()) {
      try {
        // Re-check under the lock (with time to answer on a loaded machine): someone may have
        // just started (or restarted) it.
        const upNow = serving(await probe(NCXSERVER_SOCK, 5000));
        const now = upNow ? runningNetconfd() : undefined;
        if (upNow && (!now || sameArgs(now.args, want))) {
          if (now && now.pid === managedPid()) ensureReaper();
          return info(now?.pid, false);
        }
        if (now) await stopPid(now.pid);
        // One this harness started with no listener on its socket while nobody starts one (we
        // hold the lock) serves nobody: stop it rather than leave it next to the new one. A
        // busy one is serving (above): stopping it would cut every session of the other tests.
        const stale = upNow ? undefined : managedPid();
        if (stale !== undefined && cmdline(stale).includes(`--ncxserver-sockname=${NCXSERVER_SOCK}`)) await stopPid(stale);
        const pid = await startNetconfd();
        ensureReaper();
        return info(pid, true);
      } finally {
        unlock();
      }
    }
    breakStaleLock();
    if (Date.now() > deadline) {
      throw new Error(`ensureNetconfd: no netconfd on ${NCXSERVER_SOCK} after ${timeoutMs} ms (lock ${LOCK} held)`);
    }
    await sleep(100);
  }
}

/**
 * Stops the harness's netconfd. Not for tests that run concurrently with others: they
 * share it (the reaper stops it once they are done). For manual cleanup: `node -e "import('./dist/test/e2e/peers/index.js').then(m => m.stopNetconfd())"`
 */
export async function stopNetconfd(): Promise<void> {
  const running = runningNetconfd();
  if (running) await stopPid(running.pid);
  rmSync(PID_FILE, { force: true });
}

/**
 * Waits until netconfd has closed session `sessionId` (the <session-id> of its hello) and
 * tells whether a <close-session> for it was received first: the orderly end, as opposed
 * to the transport just going away.
 */
export async function waitForNetconfdSessionEnd(
  sessionId: string | number,
  { since = 0, timeoutMs = 10_000 }: { since?: number; timeoutMs?: number } = {},
): Promise<{ closeSession: boolean; log: string }> {
  const id = String(sessionId);
  await waitForNetconfdLog(new RegExp(`^Session ${id} closed$`, 'm'), { since, timeoutMs });
  const log = readNetconfdLog(since);
  const closeSession = new RegExp(`agt_rpc: <close-session> for ${id}=`).test(log);
  return { closeSession, log };
}

// --- reading the log ---------------------------------------------------------------------

/** Current size of the netconfd log: take it before an action, read what follows after. */
export function netconfdLogOffset(): number {
  try {
    return statSync(NETCONFD_LOG).size;
  } catch {
    return 0;
  }
}

/** netconfd's log from byte offset `since` on. */
export function readNetconfdLog(since = 0): string {
  try {
    return readFileSync(NETCONFD_LOG).subarray(since).toString('utf8');
  } catch {
    return '';
  }
}

/**
 * Waits until the log (after `since`) has a line matching `pattern`, and returns all matches.
 * e.g. `await waitForNetconfdLog(NETCONFD_LOG_PATTERNS.closeSession, { since })`
 */
export async function waitForNetconfdLog(
  pattern: RegExp,
  { since = 0, timeoutMs = 10_000, count = 1 }: { since?: number; timeoutMs?: number; count?: number } = {},
): Promise<RegExpMatchArray[]> {
  const global = pattern.global ? pattern : new RegExp(pattern.source, pattern.flags + 'g');
  return waitFor(
    `netconfd log ${NETCONFD_LOG} to match ${pattern} ${count} time(s)`,
    () => {
      const m = [...readNetconfdLog(since).matchAll(global)];
      return m.length >= count ? m : undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
}
