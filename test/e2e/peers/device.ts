// A real RFC 8071 SSH call-home device: OpenSSH's `sshd -i` serving netconfd's `netconf`
// subsystem over a TCP connection that socat opens *to* the gateway (REAL_PEERS.md).
// The device's identity is its fresh ed25519 host key; the same config run as a normal
// sshd daemon gives the direct dial-in path, the baseline for every comparison.
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as abortableSleep } from 'node:timers/promises';
import { BIN, NCXSERVER_SOCK, TEST_PASSWORD, TEST_USER } from './constants.js';
import { ensureNetconfd } from './netconfd.js';
import { passwordAuthUnavailable } from './skip.js';
import {
  currentUser,
  descendantGroups,
  freePort,
  generateKeyPair,
  groupAlive,
  isRoot,
  makeTempDir,
  removeTempDir,
  run,
  spawnGroup,
  terminateGroup,
  waitFor,
  type ExitInfo,
  type GroupChild,
} from './util.js';

export interface CallHomeDeviceOptions {
  /** used in temp dir and key comments */
  name?: string;
  /** sshd LogLevel (QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1..3); default VERBOSE */
  logLevel?: string;
  /** extra sshd_config lines, e.g. ['LoginGraceTime 5'] */
  extraConfig?: string[];
  /** start netconfd if needed (default true) */
  ensureNetconfd?: boolean;
}

/** One call-home attempt: the socat that became `sshd -i` (nofork), in its own process group. */
export interface DeviceConnection {
  readonly pid: number;
  /** resolves when sshd -i (or socat, if it never connected) exits */
  readonly exited: Promise<ExitInfo>;
  readonly hasExited: boolean;
}

export interface DirectDaemon {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface PasswordCredentials {
  username: string;
  password: string;
}

export class CallHomeDevice {
  readonly name: string;
  readonly dir: string;
  readonly sshdConfigFile: string;
  /** sshd -E log of the call-home connections (appended) */
  readonly sshdLogFile: string;
  /** socat's stderr (connection failures before sshd takes over) */
  readonly socatLogFile: string;
  readonly hostKeyFile: string;
  /** "ssh-ed25519 AAAA... comment": what an inventory's hostKeys may list */
  readonly hostPublicKeyLine: string;
  /** "SHA256:..." exactly as `ssh-keygen -lf` prints it */
  readonly hostKeyFingerprint: string;
  /** client private key the device accepts (authorized_keys): give it to the gateway */
  readonly privateKeyFile: string;
  readonly clientPublicKeyLine: string;
  /** the account the private key logs in to: root when run as root, else the current user */
  readonly username: string;

  readonly #groups = new Set<GroupChild>();
  readonly #daemons = new Set<DirectDaemon>();
  #loop: Promise<void> | undefined;
  #loopAbort: AbortController | undefined;
  #attempts = 0;
  #disposed = false;

  private constructor(init: { name: string; dir: string; hostPublicKeyLine: string; hostKeyFingerprint: string; privateKeyFile: string; clientPublicKeyLine: string }) {
    this.name = init.name;
    this.dir = init.dir;
    this.sshdConfigFile = join(init.dir, 'sshd_config');
    this.sshdLogFile = join(init.dir, 'sshd.log');
    this.socatLogFile = join(init.dir, 'socat.log');
    this.hostKeyFile = join(init.dir, 'host_ed25519');
    this.hostPublicKeyLine = init.hostPublicKeyLine;
    this.hostKeyFingerprint = init.hostKeyFingerprint;
    this.privateKeyFile = init.privateKeyFile;
    this.clientPublicKeyLine = init.clientPublicKeyLine;
    this.username = isRoot ? 'root' : currentUser;
  }

  /** Creates the device's files (keys, sshd_config, subsystem wrapper) and makes sure netconfd runs. */
  static async create(opts: CallHomeDeviceOptions = {}): Promise<CallHomeDevice> {
    const name = (opts.name ?? 'device').replace(/[^A-Za-z0-9._-]/g, '_');
    const dir = makeTempDir(`chgw-peer-${name}-`);
    // socat splits its EXEC address at spaces and commas: keep paths plain.
    if (!/^[A-Za-z0-9._/-]+$/.test(dir)) throw new Error(`device dir ${dir} has characters socat cannot pass`);
    // sshd opens authorized_keys and runs the subsystem wrapper as the *logged-in* user
    // (e.g. the password test user), so the directory must be traversable by everyone.
    chmodSync(dir, 0o755);
    if (isRoot) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privsep dir; /run is tmpfs

    const [host, client] = await Promise.all([generateKeyPair(join(dir, 'host_ed25519'), `${name}-host`), generateKeyPair(join(dir, 'client_ed25519'), `${name}-client`)]);
    writeFileSync(join(dir, 'authorized_keys'), client.publicKeyLine + '\n', { mode: 0o644 });

    // Trap 1 (REAL_PEERS.md): netconfd only accepts sessions whose SSH server port, read from
    // SSH_CONNECTION, is in its --port list (830). On a call-home connection that is the
    // device's ephemeral source port. Trap 2: netconf-subsystem exits at once without USER.
    // The 830@ mapping sends that port to the harness's own netconfd socket.
    const wrapper = join(dir, 'netconf-subsystem-830.sh');
    writeFileSync(
      wrapper,
      '#!/bin/sh\n' + 'set -- $SSH_CONNECTION\n' + `USER=\${USER:-root} SSH_CONNECTION="$1 $2 $3 830" exec ${BIN.netconfSubsystem} --ncxserver-sockname=830@${NCXSERVER_SOCK}\n`,
      { mode: 0o755 },
    );
    chmodSync(wrapper, 0o755);

    const config = [
      `HostKey ${host.privateKeyFile}`,
      'PidFile none',
      'UsePAM no',
      'PermitRootLogin yes',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'SetEnv SHLVL=1',
      `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
      `Subsystem netconf ${wrapper}`,
      ...(opts.extraConfig ?? []),
    ];
    writeFileSync(join(dir, 'sshd_config'), config.join('\n') + '\n');

    const device = new CallHomeDevice({
      name,
      dir,
      hostPublicKeyLine: host.publicKeyLine,
      hostKeyFingerprint: host.fingerprint,
      privateKeyFile: client.privateKeyFile,
      clientPublicKeyLine: client.publicKeyLine,
    });
    // Catch a bad config now rather than as a mysterious hang-up later.
    const check = await run(BIN.sshd, ['-t', '-f', device.sshdConfigFile]);
    if (check.code !== 0) throw new Error(`sshd -t rejected ${device.sshdConfigFile}: ${check.stderr.trim()}`);
    if (opts.ensureNetconfd !== false) await ensureNetconfd();
    return device;
  }

  /**
   * Password login to this device, when possible here: the install.sh test user, checked by
   * sshd as root against /etc/shadow. Undefined when not root or the user is missing
   * (see passwordAuthUnavailable()). Key login works for this user too.
   */
  get password(): PasswordCredentials | undefined {
    return passwordAuthUnavailable() ? undefined : { username: TEST_USER, password: TEST_PASSWORD };
  }

  /** Call-home attempts started so far (callHome and persistent). */
  get attempts(): number {
    return this.#attempts;
  }

  /** Call-home connections whose processes are still alive. */
  get liveConnections(): number {
    return [...this.#groups].filter((g) => groupAlive(g.pid)).length;
  }

  /**
   * Opens one TCP connection to host:port and serves SSH on it with `sshd -i` (socat's
   * nofork hands sshd the very TCP socket). Returns at once; `exited` tells when it ends.
   */
  callHome(host: string, port: number): DeviceConnection {
    if (this.#disposed) throw new Error(`device ${this.name} is disposed`);
    this.#attempts++;
    const target = host.includes(':') ? `[${host}]` : host;
    const socatLog = openSync(this.socatLogFile, 'a');
    let g: GroupChild;
    try {
      g = spawnGroup(BIN.socat, [`TCP:${target}:${port},connect-timeout=5`, `EXEC:${BIN.sshd} -i -f ${this.sshdConfigFile} -E ${this.sshdLogFile},nofork`], {
        stdio: ['ignore', 'ignore', socatLog],
      });
    } finally {
      closeSync(socatLog);
    }
    this.#groups.add(g);
    // Forget it once the whole group (sshd's post-auth child included) is gone.
    void g.exited.then(async () => {
      await waitFor('group exit', () => !groupAlive(g.pid), { timeoutMs: 60_000, intervalMs: 100 }).catch(() => {});
      this.#groups.delete(g);
    });
    return {
      pid: g.pid,
      exited: g.exited,
      get hasExited() {
        return g.hasExited;
      },
    };
  }

  /**
   * Calls home in a loop (RFC 8071 "persistent" connection): when a connection ends, for any
   * reason, waits `pauseMs` and calls again, until stop().
   */
  persistent(host: string, port: number, { pauseMs = 500 }: { pauseMs?: number } = {}): void {
    if (this.#loop) throw new Error(`device ${this.name} already calls home persistently`);
    const abort = new AbortController();
    this.#loopAbort = abort;
    this.#loop = (async () => {
      while (!abort.signal.aborted) {
        await this.callHome(host, port).exited;
        if (abort.signal.aborted) break;
        await abortableSleep(pauseMs, undefined, { signal: abort.signal }).catch(() => {});
      }
    })();
  }

  /** Ends every call-home connection and the persistent loop (SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    this.#loopAbort?.abort();
    await Promise.all([...this.#groups].map((g) => terminateGroup(g)));
    await this.#loop;
    this.#loop = undefined;
    this.#loopAbort = undefined;
  }

  /**
   * SIGKILLs the sshd of every live call-home connection: the device hangs up mid-session
   * (the kernel closes the TCP connection; no SSH disconnect is sent). A persistent device
   * calls home again after its pause.
   */
  kill(): void {
    for (const g of this.#groups) {
      // The subsystem runs in its own session (sshd setsid()s it): kill it too.
      const below = descendantGroups(g.pid);
      g.signal('SIGKILL');
      for (const pg of below) {
        try {
          process.kill(-pg, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }

  /**
   * SIGSTOPs the device's sshd processes: TCP stays up, nothing is answered. (Only sshd: a
   * stopped netconf-subsystem would soon block the shared netconfd, which writes to its
   * sessions with blocking writes.)
   */
  freeze(): void {
    for (const g of this.#groups) g.signal('SIGSTOP');
  }

  thaw(): void {
    for (const g of this.#groups) g.signal('SIGCONT');
  }

  /**
   * The same device as an ordinary dial-in sshd (`sshd -D -f cfg -o Port=N`) on
   * 127.0.0.1: the direct path, for baselines. Port 0 (default) picks a free one.
   */
  async directDaemon({ port = 0, host = '127.0.0.1' }: { port?: number; host?: string } = {}): Promise<DirectDaemon> {
    const logFile = join(this.dir, 'sshd-direct.log');
    for (let attempt = 0; ; attempt++) {
      const p = port || (await freePort(host));
      const offset = fileSize(logFile);
      const g = spawnGroup(BIN.sshd, ['-D', '-f', this.sshdConfigFile, '-E', logFile, '-o', `Port=${p}`, '-o', `ListenAddress=${host}`]);
      try {
        await waitFor(
          `direct sshd on ${host}:${p}`,
          () => {
            const log = readFrom(logFile, offset);
            if (log.includes(`Server listening on ${host} port ${p}`)) return true;
            if (g.hasExited) throw new Error(`sshd exited: ${log.trim().split('\n').slice(-3).join(' | ')}`);
            return false;
          },
          { timeoutMs: 10_000, intervalMs: 20 },
        );
      } catch (err) {
        await terminateGroup(g);
        // Lost the free-port race: try another port.
        if (!port && attempt < 3 && /Address already in use|Cannot bind/.test(readFrom(logFile, offset))) continue;
        throw err;
      }
      const daemon: DirectDaemon = {
        host,
        port: p,
        pid: g.pid,
        logFile,
        stop: async () => {
          await terminateGroup(g);
          this.#daemons.delete(daemon);
        },
      };
      this.#daemons.add(daemon);
      return daemon;
    }
  }

  /** The call-home sshd log (from byte `since`). */
  sshdLog(since = 0): string {
    return readFrom(this.sshdLogFile, since);
  }

  /** Current size of the call-home sshd log: take it before an action. */
  sshdLogOffset(): number {
    return fileSize(this.sshdLogFile);
  }

  /**
   * Waits for the call-home sshd log (after `since`) to match, e.g.
   * /Accepted publickey for/ (the gateway logged in), /Starting session: subsystem 'netconf'/
   * (a client session reached the device), /Close session: .* id (\d+)/.
   */
  async waitForSshdLog(pattern: RegExp, { since = 0, timeoutMs = 10_000 }: { since?: number; timeoutMs?: number } = {}): Promise<RegExpMatchArray> {
    return waitFor(`${this.name} sshd log to match ${pattern}`, () => this.sshdLog(since).match(pattern) ?? undefined, {
      timeoutMs,
    });
  }

  /** Stops everything and removes the device's directory (unless PEERS_KEEP_TMP=1). */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    await this.stop();
    await Promise.all([...this.#daemons].map((d) => d.stop()));
    this.#disposed = true;
    removeTempDir(this.dir);
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, since: number): string {
  try {
    return readFileSync(file).subarray(since).toString('utf8');
  } catch {
    return '';
  }
}
