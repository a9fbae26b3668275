// The pass-through observer of one splice (one client session <-> one device channel): it
// watches both byte streams, never changes or delays them, and reports messages, bytes, the
// hellos, the negotiated framing and RPC latency. Memory per splice is bounded by its caps.
import { FrameScanner, FramingError, type FrameSink, type Framing } from './framing.js';
import { negotiatedFraming, parseHello, type Hello } from './hello.js';
import type { Direction } from './direction.js';
import { readMessageHead } from './vocabulary.js';

export interface MeterEvents {
  /**
   * One complete NETCONF message, hellos included. `bytes` is the message's payload: the XML
   * octets without framing (no `]]>]]>`, chunk headers or end-of-chunks), so a message counts
   * the same in either framing. Wire bytes, framing included, are what `bytes()` reports.
   */
  message(direction: Direction, bytes: number): void;
  /** Every chunk observed, by its length (wire bytes, framing included), before it is scanned. */
  bytes(direction: Direction, n: number): void;
  hello(direction: Direction, capabilities: string[], sessionId?: string): void;
  /** Once, when both hellos are known. */
  framing(framing: Framing): void;
  /**
   * An <rpc-reply> toward the client matched an <rpc> toward the device by message-id.
   * `seconds` runs from the observed end of the <rpc> to the observed end of its reply.
   * `operation` is the local name of the rpc's first child ('unknown' if past the prefix).
   * `result` is 'ok', the <error-tag> of the first <rpc-error>, or 'rpc-error' when that tag
   * lies beyond the inspected prefix.
   */
  rpc(operation: string, messageId: string | undefined, seconds: number, result: 'ok' | 'rpc-error' | string): void;
}

export interface MeterOptions {
  /** Largest payload of one message (bytes); more is a FramingError. */
  maxMessageBytes: number;
  /** Largest hello; also the most bytes held in a direction while the other hello is awaited. */
  maxHelloBytes: number;
  /** RPCs awaiting a reply; beyond this the oldest is forgotten. Default 1024. */
  maxOutstandingRpcs?: number;
  /** Bytes of each message's start inspected for rpc / rpc-reply details. Default 4096. */
  maxPrefixBytes?: number;
  /** Monotonic clock in milliseconds. Default performance.now. */
  now?: () => number;
}

/** What one direction holds in memory right now, for tests and debugging. */
export interface MeterHeld {
  helloBytes: number;
  pendingBytes: number;
  prefixBytes: number;
  scannerBytes: number;
}

type Phase = 'hello' | 'await-peer' | 'running';

interface Outstanding {
  operation: string;
  start: number;
}

class Side {
  readonly scanner: FrameScanner;
  phase: Phase = 'hello';
  hello: Hello | undefined;
  helloParts: Buffer[] = [];
  helloBytes = 0;
  pending: { bytes: Buffer; at: number }[] = [];
  pendingBytes = 0;
  messageBytes = 0;
  readonly prefix: Buffer;
  prefixLen = 0;
  failure: FramingError | undefined;

  constructor(
    readonly direction: Direction,
    sink: FrameSink,
    maxMessageBytes: number,
    prefixBytes: number,
  ) {
    // RFC 6242 §4.1: the hellos are always sent with end-of-message framing.
    this.scanner = new FrameScanner('eom', sink, { maxMessageBytes });
    this.prefix = Buffer.alloc(prefixBytes);
  }
}

export class NetconfMeter {
  readonly #events: Partial<MeterEvents>;
  readonly #maxHello: number;
  readonly #maxOutstanding: number;
  readonly #now: () => number;
  readonly #toDevice: Side;
  readonly #toClient: Side;
  readonly #outstanding = new Map<string, Outstanding>();
  #framing: Framing | undefined;
  #heldAt: number | undefined; // while held bytes are scanned: when they arrived

  constructor(events: Partial<MeterEvents>, opts: MeterOptions) {
    this.#events = events;
    this.#maxHello = opts.maxHelloBytes;
    this.#maxOutstanding = opts.maxOutstandingRpcs ?? 1024;
    this.#now = opts.now ?? (() => performance.now());
    const prefixBytes = opts.maxPrefixBytes ?? 4096;
    this.#toDevice = this.#makeSide('to_device', opts.maxMessageBytes, prefixBytes);
    this.#toClient = this.#makeSide('to_client', opts.maxMessageBytes, prefixBytes);
  }

  #makeSide(direction: Direction, maxMessageBytes: number, prefixBytes: number): Side {
    const side: Side = new Side(direction, { data: (segment) => this.#data(side, segment), end: () => this.#end(side) }, maxMessageBytes, prefixBytes);
    return side;
  }

  /** The framing negotiated from both hellos, once known. */
  get framing(): Framing | undefined {
    return this.#framing;
  }

  get outstandingRpcs(): number {
    return this.#outstanding.size;
  }

  /**
   * Whether a message is part-way through in `direction`: its first non-blank byte passed,
   * its end not yet (blank bytes between messages start nothing). A graceful drain waits for it.
   */
  inMessage(direction: Direction): boolean {
    const s = this.#side(direction);
    if (s.phase !== 'running' || !s.scanner.inMessage) return false;
    return s.prefix.toString('latin1', 0, s.prefixLen).trim() !== '';
  }

  held(direction: Direction): MeterHeld {
    const s = this.#side(direction);
    return {
      helloBytes: s.helloBytes,
      pendingBytes: s.pendingBytes,
      prefixBytes: s.prefixLen,
      scannerBytes: s.scanner.heldBytes,
    };
  }

  /**
   * Observes bytes that are passing in `direction` (the caller forwards them unchanged,
   * whatever happens here). Throws FramingError; a direction that failed keeps failing (its
   * bytes are still counted), the other direction goes on.
   */
  observe(direction: Direction, chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#events.bytes?.(direction, chunk.length);
    const side = this.#side(direction);
    this.#guard(side, () => {
      this.#drain(side);
      if (side.phase === 'await-peer') {
        this.#hold(side, chunk);
      } else {
        const n = side.scanner.push(chunk);
        if (n < chunk.length) this.#hold(side, chunk.subarray(n));
      }
    });
    // This chunk may have completed the second hello: what the other side held can be read now.
    const peer = this.#peer(side);
    if (peer.phase === 'await-peer' && this.#framing !== undefined && peer.failure === undefined) {
      this.#guard(peer, () => this.#drain(peer));
    }
  }

  #side(direction: Direction): Side {
    return direction === 'to_device' ? this.#toDevice : this.#toClient;
  }

  #peer(side: Side): Side {
    return side === this.#toDevice ? this.#toClient : this.#toDevice;
  }

  #guard(side: Side, fn: () => void): void {
    if (side.failure) throw side.failure;
    try {
      fn();
    } catch (err) {
      if (err instanceof FramingError) {
        const code = err.code === 'GW_ERR_NOT_NETCONF' ? 'GW_ERR_NOT_NETCONF' : 'GW_ERR_FRAMING';
        side.failure = new FramingError(`${side.direction}: ${err.message}`, { cause: err, code });
        side.helloParts = [];
        side.helloBytes = 0;
        side.pending = [];
        side.pendingBytes = 0;
        throw side.failure;
      }
      side.failure = new FramingError(`${side.direction}: metering stopped by an unexpected error`, { cause: err });
      throw err;
    }
  }

  // Bytes after a side's hello, before the other hello says which framing they are in.
  #hold(side: Side, bytes: Buffer): void {
    if (side.pendingBytes + bytes.length > this.#maxHello) {
      throw new FramingError(`more than ${this.#maxHello} bytes sent after the hello before the other side's hello`);
    }
    side.pending.push({ bytes: Buffer.from(bytes), at: this.#now() }); // a copy: the caller's buffer moves on
    side.pendingBytes += bytes.length;
  }

  #drain(side: Side): void {
    if (side.phase !== 'await-peer' || this.#framing === undefined) return;
    side.phase = 'running';
    side.scanner.setFraming(this.#framing);
    side.scanner.resume();
    const pending = side.pending;
    side.pending = [];
    try {
      for (const { bytes, at } of pending) {
        side.pendingBytes -= bytes.length;
        // An rpc that was held is timed from its arrival, not from the other hello's.
        this.#heldAt = at;
        side.scanner.push(bytes);
      }
    } finally {
      this.#heldAt = undefined;
    }
  }

  #data(side: Side, segment: Buffer): void {
    if (side.phase === 'hello') {
      if (side.helloBytes + segment.length > this.#maxHello) {
        throw new FramingError(`hello exceeds ${this.#maxHello} bytes`);
      }
      side.helloParts.push(Buffer.from(segment));
      side.helloBytes += segment.length;
      return;
    }
    side.messageBytes += segment.length;
    const room = side.prefix.length - side.prefixLen;
    if (room > 0) side.prefixLen += segment.copy(side.prefix, side.prefixLen, 0, Math.min(room, segment.length));
  }

  #end(side: Side): void {
    if (side.phase === 'hello') {
      this.#endHello(side);
      return;
    }
    const bytes = side.messageBytes;
    const text = side.prefix.toString('utf8', 0, side.prefixLen);
    side.messageBytes = 0;
    side.prefixLen = 0;
    this.#events.message?.(side.direction, bytes);
    this.#inspect(side.direction, text);
  }

  #endHello(side: Side): void {
    const bytes = side.helloBytes;
    const parts = side.helloParts;
    side.helloParts = [];
    side.helloBytes = 0;
    const hello = parseHello(Buffer.concat(parts, bytes));
    side.hello = hello;
    this.#events.message?.(side.direction, bytes);
    this.#events.hello?.(side.direction, hello.capabilities, hello.sessionId);
    const peer = this.#peer(side);
    if (peer.hello === undefined) {
      // Which framing follows is unknown until the other hello: stop here and hold the rest.
      side.phase = 'await-peer';
      side.scanner.pause();
      return;
    }
    const framing = negotiatedFraming(side.hello.capabilities, peer.hello.capabilities);
    this.#framing = framing;
    this.#events.framing?.(framing);
    side.phase = 'running';
    // Allowed here, between messages: the rest of this chunk is read in the new framing.
    side.scanner.setFraming(framing);
  }

  #inspect(direction: Direction, text: string): void {
    if (text === '') return;
    const head = readMessageHead(text);
    if (!head || head.messageId === undefined) return;
    if (direction === 'to_device') {
      if (head.root !== 'rpc') return;
      // A reused message-id is tracked from its latest <rpc>.
      this.#outstanding.delete(head.messageId);
      this.#outstanding.set(head.messageId, { operation: head.operation ?? 'unknown', start: this.#heldAt ?? this.#now() });
      if (this.#outstanding.size > this.#maxOutstanding) {
        const oldest = this.#outstanding.keys().next().value;
        if (oldest !== undefined) this.#outstanding.delete(oldest);
      }
      return;
    }
    // RFC 6241 §4.2: the <rpc-reply> carries the message-id of its <rpc>. <notification>s
    // (RFC 5277) carry none and are only counted.
    if (head.root !== 'rpc-reply') return;
    const rpc = this.#outstanding.get(head.messageId);
    if (!rpc) return;
    this.#outstanding.delete(head.messageId);
    const seconds = Math.max(0, (this.#now() - rpc.start) / 1000);
    this.#events.rpc?.(rpc.operation, head.messageId, seconds, head.result ?? 'ok');
  }
}
