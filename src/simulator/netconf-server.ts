// One NETCONF session of a simulated device over one duplex stream (an ssh2 `netconf`
// subsystem channel): hello exchange, RFC 6242 framing (end-of-message, then chunked when both
// sides speak base:1.1), and the RFC 6241 operations on the device's tiny datastore. Replies
// of any size are generated piece by piece and written under the channel's backpressure.
import type { Duplex } from 'node:stream';
import { CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1, NETCONF_BASE_NS as BASE_NS, helloMessage } from '../netconf/vocabulary.js';
import { SIM_NS, type DeviceDatastore, type SessionHandle } from './datastore.js';
import { frameMessage, FrameReader, FramingError, type Framing } from './framing.js';
import { dataReplyPieces } from './bulk-reply.js';
import { notSupported, runOperation, type OperationSession } from './operations.js';
import { RpcError } from './rpc-error.js';
import { child, elementChildren, escapeText, parseXml, serialize, textOf, XmlError, type XmlElement } from './xml.js';

export const SERVER_CAPABILITIES: readonly string[] = [
  CAPABILITY_BASE_1_0,
  CAPABILITY_BASE_1_1,
  'urn:ietf:params:netconf:capability:candidate:1.0',
  'urn:ietf:params:netconf:capability:validate:1.0',
  'urn:ietf:params:netconf:capability:validate:1.1',
  'urn:ietf:params:netconf:capability:writable-running:1.0',
];

export interface NetconfSessionOptions {
  datastore: DeviceDatastore;
  /** Bytes of the XML message a full get / get-config reply should have (read per request). */
  replySize?: () => number;
  /** Largest request kept whole; larger ones are read to the end and answered `too-big`. */
  maxMessageSize?: number;
  /** Seconds to wait for the client's hello. */
  helloTimeout?: number;
  onClose?: (session: NetconfSession) => void;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024 * 1024;
const DEFAULT_HELLO_TIMEOUT = 60;
/** Queued requests beyond this pause the channel (and so, through the SSH window, the client). */
const QUEUE_HIGH_WATER = 4 * 1024 * 1024;

type Queued = { kind: 'message'; body: Buffer } | { kind: 'oversized'; prefix: Buffer; size: number };

export class NetconfSession implements SessionHandle {
  readonly id: number;
  /** Undefined until the client's hello arrived. */
  framing: Framing | undefined;
  clientCapabilities: string[] = [];
  private readonly stream: Duplex;
  private readonly ds: DeviceDatastore;
  private readonly options: NetconfSessionOptions;
  private readonly reader: FrameReader;
  private readonly ac = new AbortController();
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private inputEnded = false;
  private closed = false;
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(stream: Duplex, options: NetconfSessionOptions) {
    this.stream = stream;
    this.options = options;
    this.ds = options.datastore;
    this.id = this.ds.newSessionId();
    this.ds.addSession(this);
    this.reader = new FrameReader(
      {
        message: (body) => this.onMessage({ kind: 'message', body }),
        oversized: (prefix, size) => this.onMessage({ kind: 'oversized', prefix, size }),
      },
      { maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE },
    );
    stream.on('data', (d: Buffer) => this.onData(d));
    stream.on('end', () => this.onEnd());
    stream.on('close', () => this.cleanup());
    stream.on('error', () => this.cleanup());
    // RFC 6241 §8.1: each peer sends its hello as soon as the session is open
    this.writeNow(frameMessage(this.helloXml(), 'eom'));
    this.helloTimer = setTimeout(() => this.kill('no hello from the client'), (options.helloTimeout ?? DEFAULT_HELLO_TIMEOUT) * 1000);
    this.helloTimer.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ends the session now (kill-session, the connection went away, a protocol violation). */
  kill(_reason: string): void {
    if (this.closed) return;
    this.cleanup();
    this.stream.destroy();
  }

  private helloXml(): string {
    return helloMessage(SERVER_CAPABILITIES, this.id);
  }

  // ---- input -------------------------------------------------------------------------------

  private onData(d: Buffer): void {
    if (this.closed) return;
    try {
      this.reader.push(d);
    } catch (err) {
      // RFC 6242 §4.2: a framing error ends the session
      if (err instanceof FramingError) this.kill(err.message);
      else throw err;
    }
  }

  private onMessage(item: Queued): void {
    if (this.framing === undefined) {
      // The hello decides how the very next bytes are framed, so it is handled synchronously.
      if (item.kind === 'oversized') return this.kill('oversized hello');
      return this.onHello(item.body);
    }
    if (item.kind === 'message' && isBlank(item.body)) return;
    this.queue.push(item);
    this.queuedBytes += item.kind === 'message' ? item.body.length : item.prefix.length;
    if (this.queuedBytes > QUEUE_HIGH_WATER) this.stream.pause();
    void this.pump();
  }

  private onHello(body: Buffer): void {
    let hello: XmlElement;
    try {
      hello = parseXml(body.toString('utf8'));
    } catch {
      return this.kill('malformed hello');
    }
    if (hello.local !== 'hello' || hello.ns !== BASE_NS) return this.kill('first message is not a hello');
    // RFC 6241 §8.1: a client hello carrying a session-id ends the session
    if (child(hello, 'session-id', BASE_NS)) return this.kill('client hello has a session-id');
    const caps = child(hello, 'capabilities', BASE_NS);
    this.clientCapabilities = caps
      ? elementChildren(caps)
          .filter((c) => c.local === 'capability')
          .map((c) => textOf(c).trim())
      : [];
    const v10 = this.clientCapabilities.includes(CAPABILITY_BASE_1_0);
    const v11 = this.clientCapabilities.includes(CAPABILITY_BASE_1_1);
    if (!v10 && !v11) return this.kill('no common base capability');
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    // RFC 6242 §4.1: chunked framing once both hellos advertised base:1.1
    this.framing = v11 ? 'chunked' : 'eom';
    this.reader.framing = this.framing;
  }

  private onEnd(): void {
    this.inputEnded = true;
    if (!this.pumping) this.finishAfterInput();
  }

  private finishAfterInput(): void {
    if (this.closed || !this.inputEnded || this.queue.length > 0) return;
    this.cleanup();
    this.stream.end();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const item = this.queue.shift()!;
        this.queuedBytes -= item.kind === 'message' ? item.body.length : item.prefix.length;
        if (this.queuedBytes <= QUEUE_HIGH_WATER / 2 && this.stream.isPaused()) this.stream.resume();
        await this.handle(item);
      }
    } catch {
      // a write failed: the channel is gone
      this.kill('write failed');
    } finally {
      this.pumping = false;
    }
    this.finishAfterInput();
  }

  // ---- requests ----------------------------------------------------------------------------

  private async handle(item: Queued): Promise<void> {
    if (item.kind === 'oversized') {
      const rpc = rpcStartTag(item.prefix);
      const err = new RpcError('rpc', 'too-big', `request of ${item.size} bytes is over the ${this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE}-byte limit`);
      return this.sendReply(rpc, err.toXml(prefixOf(rpc)));
    }
    let rpc: XmlElement;
    try {
      rpc = parseXml(item.body.toString('utf8'));
    } catch (e) {
      const msg = e instanceof XmlError ? e.message : 'not XML';
      return this.sendReply(undefined, new RpcError('rpc', 'malformed-message', msg).toXml());
    }
    const p = prefixOf(rpc);
    if (rpc.local !== 'rpc' || rpc.ns !== BASE_NS) {
      const err = new RpcError('protocol', 'unknown-element', `expected <rpc>, got <${rpc.local}>`, `<bad-element>${escapeText(rpc.local)}</bad-element>`);
      return this.sendReply(undefined, err.toXml());
    }
    if (!rpc.attrs.some((a) => a.local === 'message-id' && a.prefix === '')) {
      // RFC 6241 §4.1
      const err = new RpcError('rpc', 'missing-attribute', 'the rpc has no message-id', '<bad-attribute>message-id</bad-attribute><bad-element>rpc</bad-element>');
      return this.sendReply(rpc, err.toXml(p));
    }
    const op = elementChildren(rpc)[0];
    try {
      if (!op) throw new RpcError('rpc', 'missing-element', 'the rpc names no operation', '<bad-element>rpc</bad-element>');
      if (op.ns !== BASE_NS) throw notSupported(op);
      await runOperation(this.operationSession(rpc), op, p);
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      await this.sendReply(rpc, e.toXml(p));
    }
  }

  /** The session as the operations of `rpc` see it. */
  private operationSession(rpc: XmlElement): OperationSession {
    return {
      id: this.id,
      datastore: this.ds,
      reply: (inner) => this.sendReply(rpc, inner),
      data: (elements, bulk) => this.sendData(rpc, elements, bulk),
      state: () => this.stateElement(),
      end: () => {
        this.cleanup();
        this.stream.end();
      },
    };
  }

  private stateElement(): XmlElement {
    return parseXml(`<simulator-state xmlns="${SIM_NS}"><session-id>${this.id}</session-id><sessions>${this.ds.sessionCount}</sessions></simulator-state>`);
  }

  // ---- output ------------------------------------------------------------------------------

  private replyHead(rpc: XmlElement | undefined): string {
    // RFC 6241 §4.2: every attribute of the <rpc>, xmlns included, comes back unchanged
    if (!rpc) return `<rpc-reply xmlns="${BASE_NS}">`;
    const p = prefixOf(rpc);
    return `<${p}rpc-reply${rpc.rawAttrs ? ` ${rpc.rawAttrs}` : ''}>`;
  }

  private sendReply(rpc: XmlElement | undefined, inner: string): Promise<void> {
    const body = `${this.replyHead(rpc)}${inner}</${rpc ? prefixOf(rpc) : ''}rpc-reply>`;
    return this.write(frameMessage(body, this.framing ?? 'eom'));
  }

  /**
   * A <data> reply. With `bulk`, filler entries bring the whole message to exactly the
   * configured reply size; it is written as 64 KiB pieces, each waiting for the channel.
   */
  private async sendData(rpc: XmlElement, data: readonly XmlElement[], bulk: boolean): Promise<void> {
    const p = prefixOf(rpc);
    const parentNs = p === '' ? BASE_NS : (rpc.nsDecls.find(([x]) => x === '')?.[1] ?? '');
    const head = Buffer.from(`${this.replyHead(rpc)}<${p}data>${data.map((e) => serialize(e, parentNs)).join('')}`);
    const tail = Buffer.from(`</${p}data></${p}rpc-reply>`);
    const want = bulk ? (this.options.replySize?.() ?? 0) : 0;
    for (const piece of dataReplyPieces(head, tail, want, this.framing ?? 'eom')) await this.write(piece);
  }

  private writeNow(buf: Buffer): void {
    if (!this.closed) this.stream.write(buf);
  }

  /** Resolves once the stream accepted more; rejects when the session ends first. */
  private write(buf: Buffer): Promise<void> {
    const signal = this.ac.signal;
    if (signal.aborted) return Promise.reject(new Error('session closed'));
    if (this.stream.write(buf)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stream = this.stream;
      const done = (err?: Error): void => {
        stream.off('drain', onDrain);
        stream.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      // ssh2: a write into a closed channel never calls back, so also wait for the end
      const onClose = (): void => done(new Error('channel closed'));
      const onAbort = (): void => done(new Error('session closed'));
      stream.on('drain', onDrain);
      stream.on('close', onClose);
      signal.addEventListener('abort', onAbort);
    });
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort();
    this.reader.stop();
    this.queue.length = 0;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.ds.closeSession(this.id);
    this.options.onClose?.(this);
  }
}

export function serveNetconf(stream: Duplex, options: NetconfSessionOptions): NetconfSession {
  return new NetconfSession(stream, options);
}

// ---- helpers -------------------------------------------------------------------------------

function isBlank(b: Buffer): boolean {
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  return true;
}

function prefixOf(rpc: XmlElement | undefined): string {
  return rpc && rpc.prefix ? `${rpc.prefix}:` : '';
}

/** The <rpc ...> start tag of a request too big to parse whole, for its message-id. */
function rpcStartTag(prefix: Buffer): XmlElement | undefined {
  const text = prefix.toString('utf8');
  const m = /<((?:[A-Za-z_][\w.-]*:)?rpc)(\s[^>]*?)?\/?>/.exec(text);
  if (!m) return undefined;
  try {
    const el = parseXml(`<${m[1]}${m[2] ?? ''}/>`);
    return el.local === 'rpc' && el.ns === BASE_NS ? el : undefined;
  } catch {
    return undefined;
  }
}
