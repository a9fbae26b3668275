// libnetconf2 peers (Debian libnetconf2-dev 2.0.x, the library under Netopeer2): a call-home
// device built on its server API and a manager built on its client API, both small C
// programs in test/peers/libnetconf2/, compiled with gcc at test time and cached under the
// peers' state dir by a hash of their sources (so every test process shares one build).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { TestFn } from 'ava';
import { PEERS_STATE_DIR } from './constants.js';
import { requirePeers, skippingTestFn } from './skip.js';
import { repoRoot, run, spawnGroup, terminateGroup, waitFor, type GroupChild } from './util.js';

const SOURCES = ['device.c', 'manager.c', 'chgw-lnc2-device.yang'];
/** ietf-netconf and what it imports, as Debian ships them (netconfd's yuma module tree). */
const IETF_YANG_DIR = '/usr/share/yuma/modules/ietf';
const PKG_CONFIG_MODULES = ['libnetconf2', 'libyang', 'libssh'];

export interface Libnetconf2Peers {
  device: string;
  manager: string;
  /** One directory with every module both programs load (a client takes a single search path). */
  yangDir: string;
}

let missingCache: string | undefined | null = null;

/** Why the libnetconf2 peers cannot be built here, or undefined when they can. */
export function libnetconf2Missing(): string | undefined {
  if (missingCache !== null) return missingCache;
  const gcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' });
  const pkg = spawnSync('pkg-config', ['--exists', ...PKG_CONFIG_MODULES], { stdio: 'ignore' });
  if (gcc.status !== 0) missingCache = 'gcc';
  else if (pkg.status !== 0) missingCache = `pkg-config ${PKG_CONFIG_MODULES.join(' ')} (libnetconf2-dev, libyang2-dev, libssh-dev)`;
  else if (!existsSync(join(IETF_YANG_DIR, 'ietf-netconf@2011-06-01.yang'))) missingCache = `${IETF_YANG_DIR}/ietf-netconf@2011-06-01.yang (netconfd)`;
  else missingCache = undefined;
  return missingCache;
}

/**
 * Like requirePeers(test), also requiring what building the libnetconf2 peers needs:
 * skipped loudly here without it, a failure under CI=true.
 */
export function requireLibnetconf2<C>(test: TestFn<C>): TestFn<C> {
  const missing = libnetconf2Missing();
  if (!missing) return requirePeers(test);
  const ci = process.env.CI;
  if (ci && ci !== '0' && ci.toLowerCase() !== 'false') {
    throw new Error(`REAL PEERS MISSING: ${missing}; run: bash test/peers/install.sh (CI=true: failing instead of skipping)`);
  }
  console.error(`\n*** REAL PEERS MISSING: ${missing}; run: bash test/peers/install.sh -- SKIPPING libnetconf2 tests ***\n`);
  return skippingTestFn(test);
}

let built: Promise<Libnetconf2Peers> | undefined;

/** Compiles the device and the manager once per source version (cached across processes). */
export function buildLibnetconf2Peers(): Promise<Libnetconf2Peers> {
  built ??= build();
  return built;
}

async function build(): Promise<Libnetconf2Peers> {
  const srcDir = join(repoRoot(), 'test', 'peers', 'libnetconf2');
  const hash = createHash('sha256');
  for (const f of SOURCES) hash.update(f).update(readFileSync(join(srcDir, f)));
  const outDir = join(PEERS_STATE_DIR, 'libnetconf2', hash.digest('hex').slice(0, 16));
  mkdirSync(outDir, { recursive: true });
  const flags = await run('pkg-config', ['--cflags', '--libs', ...PKG_CONFIG_MODULES]);
  if (flags.code !== 0) throw new Error(`pkg-config failed: ${flags.stderr.trim()}`);
  const peers: Libnetconf2Peers = { device: join(outDir, 'lnc2-device'), manager: join(outDir, 'lnc2-manager'), yangDir: join(outDir, 'yang') };
  for (const [name, out] of [
    ['device.c', peers.device],
    ['manager.c', peers.manager],
  ] as const) {
    if (existsSync(out)) continue;
    // Build under a private name, then rename: concurrent test processes never see half a binary.
    const tmp = `${out}.${process.pid}.tmp`;
    const cc = await run('gcc', ['-O1', '-Wall', '-o', tmp, join(srcDir, name), ...flags.stdout.trim().split(/\s+/)], { timeoutMs: 120_000 });
    if (cc.code !== 0) throw new Error(`gcc ${name} failed: ${cc.stderr.trim()}`);
    renameSync(tmp, out);
  }
  if (!existsSync(join(peers.yangDir, 'chgw-lnc2-device.yang'))) {
    const tmpDir = `${peers.yangDir}.${process.pid}.tmp`;
    mkdirSync(tmpDir, { recursive: true });
    for (const f of readdirSync(IETF_YANG_DIR)) if (f.endsWith('.yang')) symlinkSync(join(IETF_YANG_DIR, f), join(tmpDir, f));
    // A copy, not a link: the cache outlives the checkout that filled it (CI clones anew).
    copyFileSync(join(srcDir, 'chgw-lnc2-device.yang'), join(tmpDir, 'chgw-lnc2-device.yang'));
    try {
      renameSync(tmpDir, peers.yangDir);
    } catch {
      /* another process made it first */
    }
  }
  return peers;
}

export interface Lnc2DeviceOptions {
  gatewayPort: number;
  /** the device's SSH host key (not used with `tls`) */
  hostKeyFile?: string;
  /** default admin */
  username?: string;
  password?: string;
  /** the public key file the device accepts */
  authorizedKeyFile?: string;
  /** e.g. ['keyboard-interactive']; default: all three */
  auth?: Array<'publickey' | 'password' | 'keyboard-interactive'>;
  /** keyboard-interactive: a first round without prompts */
  kbdEmptyRound?: boolean;
  /** keyboard-interactive: a wrong answer gets the same prompt again */
  kbdReprompt?: boolean;
  /** end the first session (and with it the connection) this long after login: a flapping device */
  dropAfterMs?: number;
  /** entries of the generated list (2,000 give a get-config reply of about 320 kB) */
  items?: number;
  /** TLS call home instead of SSH; `gatewayFingerprint` is the gateway certificate's SHA-256, "AB:CD:..." */
  tls?: { cert: string; key: string; gatewayCert: string; gatewayFingerprint: string; ca?: string };
}

/** One running libnetconf2 call-home device; its stderr events are parsed as they come. */
export class Lnc2Device {
  readonly events: string[] = [];
  private constructor(private readonly proc: GroupChild) {
    proc.child.stderr?.setEncoding('utf8');
    let partial = '';
    proc.child.stderr?.on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('EVENT ')) this.events.push(l.slice(6));
    });
  }

  static async start(opts: Lnc2DeviceOptions): Promise<Lnc2Device> {
    const peers = await buildLibnetconf2Peers();
    const args = ['--port', String(opts.gatewayPort), '--yang-dirs', peers.yangDir, '--username', opts.username ?? 'admin'];
    if (opts.tls) {
      // libnetconf2 prefixes a cert-to-name fingerprint with its hash algorithm: 04 is SHA-256.
      args.push('--tls', '--cert', opts.tls.cert, '--key', opts.tls.key, '--gateway-cert', opts.tls.gatewayCert, '--gateway-fingerprint', `04:${opts.tls.gatewayFingerprint}`);
      if (opts.tls.ca) args.push('--ca', opts.tls.ca);
    } else {
      args.push('--hostkey', opts.hostKeyFile ?? '');
    }
    if (opts.password !== undefined) args.push('--password', opts.password);
    if (opts.authorizedKeyFile) args.push('--authkey', opts.authorizedKeyFile);
    if (opts.auth) args.push('--auth', opts.auth.join(','));
    if (opts.kbdEmptyRound) args.push('--kbd-empty-round');
    if (opts.kbdReprompt) args.push('--kbd-reprompt');
    if (opts.dropAfterMs) args.push('--drop-after-ms', String(opts.dropAfterMs));
    if (opts.items) args.push('--items', String(opts.items));
    const device = new Lnc2Device(spawnGroup(peers.device, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    await waitFor('the libnetconf2 device to start', () => device.events.includes('ready') || device.proc.hasExited, { timeoutMs: 10_000 });
    if (device.proc.hasExited) throw new Error(`lnc2-device exited at start: ${args.join(' ')}`);
    return device;
  }

  /** Call-home connections the device opened (TCP + SSH accepted, before authentication). */
  get connects(): number {
    return this.events.filter((e) => e.startsWith('connect ')).length;
  }

  /** Authentication attempts by connection number: [[method, result], ...]. */
  authAttempts(): Map<number, Array<[string, string]>> {
    const out = new Map<number, Array<[string, string]>>();
    for (const e of this.events) {
      const m = /^auth (\d+) (\S+) (ok|fail)$/.exec(e);
      if (!m) continue;
      const list = out.get(Number(m[1])) ?? [];
      list.push([m[2]!, m[3]!]);
      out.set(Number(m[1]), list);
    }
    return out;
  }

  async stop(): Promise<void> {
    await terminateGroup(this.proc, 3000);
  }
}

export interface Lnc2ManagerResult {
  ok: boolean;
  sessionId?: number;
  replies?: number;
  bytes?: number;
  error?: string;
  stderr: string;
}

/** One libnetconf2 client session through the gateway: `count` get-configs (or gets). */
export async function runLnc2Manager(o: { port: number; user: string; password: string; count?: number; pauseMs?: number; get?: boolean }): Promise<Lnc2ManagerResult> {
  const peers = await buildLibnetconf2Peers();
  const args = ['--port', String(o.port), '--user', o.user, '--password', o.password, '--yang-dirs', peers.yangDir, '--count', String(o.count ?? 1)];
  if (o.pauseMs) args.push('--pause-ms', String(o.pauseMs));
  if (o.get) args.push('--get');
  const r = await run(peers.manager, args, { timeoutMs: 60_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ...(JSON.parse(line) as Omit<Lnc2ManagerResult, 'stderr'>), stderr: r.stderr };
  } catch {
    return { ok: false, error: `no result (exit ${r.code}): ${r.stdout.trim()}`, stderr: r.stderr };
  }
}

/** A failed manager's reason and the end of its stderr, for an assertion message. */
export function describeLnc2(r: Lnc2ManagerResult): string {
  return `${r.error ?? 'ok'}; stderr: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
}
