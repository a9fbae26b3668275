// A manager on a real OpenSSH client: `ssh -s netconf` with the NETCONF bytes written and
// read by this process. Replies are parsed only at chunk headers (RFC 6242 §4.2), so
// reading a 1 GiB reply costs a few thousand header parses, not a scan of every byte.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { BIN } from '../../test/e2e/peers/constants.js';

const BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
const CLIENT_HELLO = `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${BASE_NS}"><capabilities><capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>`;

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  cipher: string;
  /** more `-o Key=Value` options; they win over the defaults below (ssh takes an option's first value) */
  options?: string[];
}

export function sshClientArgs(t: SshTarget): string[] {
  return [
    ...(t.options ?? []).flatMap((o) => ['-o', o]),
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'Compression=no',
    '-o',
    'IdentitiesOnly=yes',
    '-c',
    t.cipher,
    '-i',
    t.identityFile,
    '-p',
    String(t.port),
    '-l',
    t.user,
  ];
}

export class NetconfManager {
  private readonly child: ChildProcess;
  private pendingHeader = '';
  private inChunk = 0;
  private helloBuf = '';
  private helloDone = false;
  private onMessage: (() => void) | undefined;
  private onHello: (() => void) | undefined;
  private prefix = '';
  /** Bytes of NETCONF content (chunk bodies) received after the hello. */
  received = 0;
  /** With checkDigest(): sha256 of the last reply's chunks but its last one, and that last chunk's first bytes. */
  replyDigest = '';
  lastChunk = '';
  /** sha256 of the content of the last bigRequest({ digest: true }). */
  sentDigest = '';
  private digest: Hash | undefined;
  private digestBeforeChunk: Hash | undefined;
  stderr = '';
  private failed: Error | undefined;

  private constructor(target: SshTarget) {
    this.child = spawn(BIN.ssh, [...sshClientArgs(target), target.host, '-s', 'netconf'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => this.onData(d));
    this.child.stdin!.on('error', () => undefined);
    this.child.once('exit', (code) => {
      this.failed = new Error(`ssh exited (${code}): ${this.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      this.onHello?.();
      this.onMessage?.();
    });
  }

  /** Connects, exchanges hellos (base:1.1, chunked framing from here on). */
  static async open(target: SshTarget, timeoutMs = 30_000): Promise<NetconfManager> {
    const m = new NetconfManager(target);
    m.child.stdin!.write(CLIENT_HELLO);
    const timer = setTimeout(() => m.child.kill('SIGKILL'), timeoutMs);
    await new Promise<void>((resolve) => (m.onHello = resolve));
    clearTimeout(timer);
    m.onHello = undefined;
    if (m.failed || !m.helloDone) throw m.failed ?? new Error('no hello');
    return m;
  }

  private onData(d: Buffer): void {
    let i = 0;
    if (!this.helloDone) {
      this.helloBuf += d.toString('latin1');
      const end = this.helloBuf.indexOf(']]>]]>');
      if (end < 0) return;
      this.helloDone = true;
      const rest = Buffer.from(this.helloBuf.slice(end + 6), 'latin1');
      this.helloBuf = '';
      this.onHello?.();
      if (rest.length) this.onData(rest);
      return;
    }
    while (i < d.length) {
      if (this.inChunk > 0) {
        const n = Math.min(this.inChunk, d.length - i);
        if (this.prefix.length < 512) this.prefix += d.toString('utf8', i, i + Math.min(n, 512));
        this.digest?.update(d.subarray(i, i + n));
        if (this.digest && this.lastChunk.length < 512) this.lastChunk += d.toString('latin1', i, i + Math.min(n, 512));
        this.inChunk -= n;
        this.received += n;
        i += n;
        continue;
      }
      // a chunk header: "\n#N\n" or "\n##\n", possibly split across reads
      const nl = d.indexOf(10, this.pendingHeader.length === 0 ? i + 1 : i);
      if (nl < 0) {
        this.pendingHeader += d.toString('latin1', i);
        return;
      }
      const header = this.pendingHeader + d.toString('latin1', i, nl + 1);
      this.pendingHeader = '';
      i = nl + 1;
      if (header === '\n##\n') {
        if (this.digest) this.replyDigest = this.digestBeforeChunk!.digest('hex');
        this.digest = undefined;
        const cb = this.onMessage;
        this.onMessage = undefined;
        cb?.();
      } else {
        const m = /^\n#([0-9]+)\n$/.exec(header);
        if (!m) {
          this.failed = new Error(`bad chunk header ${JSON.stringify(header)}`);
          this.child.kill('SIGKILL');
          return;
        }
        this.inChunk = Number(m[1]);
        if (this.digest) {
          this.digestBeforeChunk = this.digest.copy();
          this.lastChunk = '';
        }
      }
    }
  }

  /** Sends one rpc (body as XML) and resolves with the reply's first bytes when it has all arrived. */
  async rpc(id: number, body: string): Promise<string> {
    const text = `<rpc xmlns="${BASE_NS}" message-id="${id}">${body}</rpc>`;
    const done = this.nextMessage();
    this.child.stdin!.write(`\n#${Buffer.byteLength(text)}\n${text}\n##\n`);
    await done;
    return this.takePrefix();
  }

  /** Hashes the chunks of the next reply (see replyDigest): for a <bulk digest="sha256"/> reply. */
  checkDigest(): void {
    this.digest = createHash('sha256');
    this.digestBeforeChunk = this.digest.copy();
    this.lastChunk = '';
  }

  /**
   * Sends an rpc whose body is `size` bytes of filler inside <edit-config>, streamed with
   * back-pressure. With `digest`, the filler is random and the device answers with the sha256
   * of the content it received, to compare with `sentDigest`.
   */
  async bigRequest(id: number, size: number, o: { digest?: boolean } = {}): Promise<string> {
    const done = this.nextMessage();
    const stdin = this.child.stdin!;
    const sent = o.digest ? createHash('sha256') : undefined;
    const head = `<rpc xmlns="${BASE_NS}" message-id="${id}"><edit-config><target><running/></target><config><bulk xmlns="urn:bench"${o.digest ? ' digest="sha256"' : ''}>`;
    const tail = '</bulk></config></edit-config></rpc>';
    const write = async (b: Buffer | string): Promise<void> => {
      if (!stdin.write(b)) await once(stdin, 'drain');
    };
    await write(`\n#${head.length}\n${head}`);
    sent?.update(head);
    const CHUNK = 1024 * 1024;
    const filler = o.digest ? Buffer.from(randomBytes((CHUNK * 3) / 4).toString('base64')) : Buffer.alloc(CHUNK, 'y');
    const header = Buffer.from(`\n#${CHUNK}\n`);
    let body = Math.max(0, size - head.length - tail.length);
    for (let index = 0; body > 0; index++) {
      const n = Math.min(CHUNK, body);
      // a fresh copy stamped with its index: a dropped or swapped chunk changes the digest
      const content = o.digest ? Buffer.from(filler.subarray(0, n)) : filler.subarray(0, n);
      if (o.digest) content.write(index.toString(16).padStart(16, '0'), 0, 'latin1');
      await write(n === CHUNK ? header : `\n#${n}\n`);
      await write(content);
      sent?.update(content);
      body -= n;
      if (this.failed) throw this.failed;
    }
    sent?.update(tail);
    this.sentDigest = sent?.digest('hex') ?? '';
    await write(`\n#${tail.length}\n${tail}\n##\n`);
    await done;
    return this.takePrefix();
  }

  private takePrefix(): string {
    const p = this.prefix;
    this.prefix = '';
    return p;
  }

  private nextMessage(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.onMessage = () => (this.failed ? reject(this.failed) : resolve());
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && !this.failed) {
      const exit = once(this.child, 'exit');
      try {
        await Promise.race([this.rpc(1_000_000, '<close-session/>'), exit]);
      } catch {
        /* gone */
      }
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await exit.catch(() => undefined);
      clearTimeout(timer);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/**
 * Warms a path up the way a running gateway is: `sessions` sessions opened one after the
 * other, `rpcs` RPCs of `body` on each (a fresh gateway's first sessions cost it about twice
 * the CPU per RPC of later ones, V8 tiering its hot paths up). Replies are not looked at.
 */
export async function warmUpSessions(open: () => Promise<NetconfManager>, rpcs: number, body: string, sessions = 2): Promise<void> {
  for (let s = 0; s < sessions; s++) {
    const m = await open();
    for (let i = 0; i < rpcs; i++) await m.rpc(i + 1, body);
    await m.close();
  }
}
