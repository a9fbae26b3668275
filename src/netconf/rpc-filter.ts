// The read-only filter of one client session: it sits on the client's side of the session,
// passes every message unchanged except the <rpc>s the policy refuses, and answers those
// itself with an <rpc-error> access-denied in the session's framing. Streaming: a message is
// held only until its operation element is read (at most `maxHeadBytes` of payload), then
// passed on or dropped as it arrives. Pure: bytes in, bytes out, no streams.
import { FrameScanner, FramingError, type Framing } from './framing.js';
import { negotiatedFraming, parseHello } from './hello.js';
import { encodeMessage } from './reframe.js';
import { accessDeniedReply, readRpcHead, type RpcOperation } from './read-only.js';
import { readMessageHead } from './vocabulary.js';
import type { XmlStartTag } from './xml.js';

export interface RpcFilterOptions {
  /** Whether an RPC may pass; absent: everything passes (the filter then only counts). */
  allows?: (op: RpcOperation) => boolean;
  /** Who is refused, for the error message (`user alice is read-only`). */
  who?: string;
  maxMessageBytes: number;
  maxHelloBytes: number;
  /** Payload bytes read to find the operation; an RPC whose operation lies beyond is refused. Default 4096. */
  maxHeadBytes?: number;
}

export interface FilterOutput {
  toDevice: Buffer[];
  toClient: Buffer[];
}

/** One refused RPC, for the audit trail. */
export interface Denial {
  operation: string;
  messageId: string | undefined;
}

function isBlank(b: Buffer): boolean {
  for (const c of b) if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  return true;
}

type Phase = 'hello' | 'await-peer' | 'running';

/**
 * Both directions of one client session, as the client sees it. Call fromClient() with the
 * client's bytes and fromDevice() with the bytes meant for the client; forward what each
 * returns, in order. Throws FramingError on broken framing (the session should end).
 */
export class RpcFilter {
  readonly #opts: RpcFilterOptions;
  readonly #maxHead: number;
  #framing: Framing | undefined;
  #clientCaps: string[] | undefined;
  #deviceCaps: string[] | undefined;

  // Client → device.
  readonly #client: FrameScanner;
  #clientPhase: Phase = 'hello';
  #clientHello: Buffer[] = [];
  #clientHelloBytes = 0;
  #clientHeld: Buffer[] = []; // bytes after the client's hello while the framing is unknown
  #clientHeldBytes = 0;
  #decision: 'undecided' | 'allow' | 'deny' = 'undecided';
  #headParts: Buffer[] = [];
  #headBytes = 0;
  #rawHeld: Buffer[] = []; // the current message's wire bytes while undecided
  #clientEnded = false;
  #reply: Buffer | undefined;
  #denial: Denial | undefined;

  // Device → client.
  readonly #device: FrameScanner;
  #devicePhase: Phase = 'hello';
  #deviceHello: Buffer[] = [];
  #deviceHelloBytes = 0;
  #deviceUnscanned: Buffer[] = []; // passed on already, scanned once the framing is known
  #deviceUnscannedBytes = 0;
  #deviceHead: Buffer[] = [];
  #deviceHeadBytes = 0;
  #deviceEnded = false;
  #deviceBusy = false; // part of an unfinished message has gone to the client

  /** <rpc>s passed to the device, replies seen from it, refusals waiting for their turn. */
  #forwarded = 0;
  #replies = 0;
  readonly #queue: { after: number; bytes: Buffer }[] = [];
  #out: FilterOutput = { toDevice: [], toClient: [] };

  /** Every <rpc> the client sent (passed or refused). */
  rpcs = 0;
  denied = 0;
  onDenied: ((d: Denial) => void) | undefined;

  constructor(opts: RpcFilterOptions) {
    this.#opts = opts;
    this.#maxHead = opts.maxHeadBytes ?? 4096;
    const max = { maxMessageBytes: opts.maxMessageBytes };
    // RFC 6242 §4.1: hellos are in end-of-message framing, whatever follows.
    this.#client = new FrameScanner('eom', { data: (s) => this.#clientData(s), end: () => this.#clientEnd() }, max);
    this.#device = new FrameScanner('eom', { data: (s) => this.#deviceData(s), end: () => this.#deviceEnd() }, max);
  }

  get framing(): Framing | undefined {
    return this.#framing;
  }

  get #who(): string {
    return this.#opts.who ?? 'this user';
  }

  /** Refusals waiting for replies to earlier RPCs. */
  get queued(): number {
    return this.#queue.length;
  }

  fromClient(chunk: Buffer): FilterOutput {
    this.#out = { toDevice: [], toClient: [] };
    if (this.#clientPhase === 'await-peer') this.#holdClient(chunk);
    else this.#scanClient(chunk);
    return this.#out;
  }

  fromDevice(chunk: Buffer): FilterOutput {
    this.#out = { toDevice: [], toClient: [] };
    if (this.#devicePhase === 'await-peer') {
      this.#out.toClient.push(chunk);
      this.#deviceUnscanned.push(Buffer.from(chunk));
      this.#deviceUnscannedBytes += chunk.length;
      if (this.#deviceUnscannedBytes > this.#opts.maxHelloBytes) {
        throw new FramingError(`to_client: more than ${this.#opts.maxHelloBytes} bytes after the device's hello before the client's`);
      }
    } else {
      this.#scanDevice(chunk, true);
    }
    return this.#out;
  }

  // --- client side -------------------------------------------------------------------------

  #holdClient(chunk: Buffer): void {
    this.#clientHeld.push(Buffer.from(chunk));
    this.#clientHeldBytes += chunk.length;
    if (this.#clientHeldBytes > this.#opts.maxHelloBytes) {
      throw new FramingError(`to_device: more than ${this.#opts.maxHelloBytes} bytes after the client's hello before the device's`);
    }
  }

  #scanClient(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#clientPhase === 'await-peer') {
        this.#holdClient(chunk.subarray(pos));
        return;
      }
      this.#clientEnded = false;
      const hello = this.#clientPhase === 'hello';
      const n = this.#client.push(chunk.subarray(pos));
      this.#client.resume();
      const wire = chunk.subarray(pos, pos + n);
      pos += n;
      if (hello) {
        this.#out.toDevice.push(wire); // the client's hello passes as it is
        continue;
      }
      if (this.#decision === 'undecided') this.#rawHeld.push(Buffer.from(wire));
      else if (this.#decision === 'allow') this.#out.toDevice.push(wire);
      if (this.#clientEnded) this.#finishClientMessage();
    }
  }

  #clientData(seg: Buffer): void {
    if (this.#clientPhase === 'hello') {
      this.#clientHelloBytes += seg.length;
      if (this.#clientHelloBytes > this.#opts.maxHelloBytes) throw new FramingError(`to_device: hello exceeds ${this.#opts.maxHelloBytes} bytes`);
      this.#clientHello.push(Buffer.from(seg));
      return;
    }
    if (this.#decision !== 'undecided') return;
    if (!this.#opts.allows) {
      if (!isBlank(seg)) this.#allow(true);
      return;
    }
    const room = this.#maxHead - this.#headBytes;
    if (room <= 0) return;
    const part = seg.subarray(0, room);
    this.#headParts.push(Buffer.from(part));
    this.#headBytes += part.length;
    // A tag is complete only at a '>': no need to read the head again before one arrives.
    if (part.includes(0x3e)) this.#decide(false);
    if (this.#decision === 'undecided' && this.#headBytes >= this.#maxHead) {
      this.#deny(undefined, `${this.#who} may not send an <rpc> whose operation is not within its first ${this.#maxHead} bytes`);
    }
  }

  #clientEnd(): void {
    this.#clientEnded = true;
    this.#client.pause(); // push() stops here, so the message's wire bytes are known
    if (this.#clientPhase !== 'hello') return;
    const hello = parseHello(Buffer.concat(this.#clientHello, this.#clientHelloBytes));
    this.#clientHello = [];
    this.#clientCaps = hello.capabilities;
    this.#clientPhase = 'await-peer';
    this.#framingKnown();
  }

  #decide(complete: boolean): void {
    const head = readRpcHead(Buffer.concat(this.#headParts, this.#headBytes).toString('utf8'), complete);
    if (!head) return;
    if (head.kind === 'other') this.#allow(false);
    else if (head.kind === 'refuse') this.#deny(head.root, `${this.#who} may not ${head.why}`);
    else if (this.#opts.allows!(head.op)) this.#allow(true);
    else this.#deny(head.root, `${this.#who} may not call ${head.op.name}`, head.op.name);
  }

  #allow(rpc: boolean): void {
    this.#decision = 'allow';
    if (rpc) {
      this.#forwarded++;
      this.rpcs++;
    }
    this.#headParts = [];
    for (const b of this.#rawHeld) this.#out.toDevice.push(b);
    this.#rawHeld = [];
  }

  #deny(root: XmlStartTag | undefined, why: string, operation = 'unknown'): void {
    this.#decision = 'deny';
    this.rpcs++;
    this.denied++;
    this.#headParts = [];
    this.#rawHeld = [];
    const messageId = root?.attrs.get('message-id');
    this.#reply = encodeMessage(this.#framing!, accessDeniedReply(root, `access denied: ${why}`));
    this.#denial = { operation, messageId };
  }

  #finishClientMessage(): void {
    if (this.#decision === 'undecided') {
      if (this.#opts.allows) this.#decide(true);
      else this.#allow(false); // blank: not an <rpc>
    }
    if (this.#decision === 'deny') {
      // RFC 6241 §4.5: replies in the order of the requests, so after those still owed.
      this.#queue.push({ after: this.#forwarded, bytes: this.#reply! });
      this.onDenied?.(this.#denial!);
      this.#flushQueue();
    }
    this.#decision = 'undecided';
    this.#headParts = [];
    this.#headBytes = 0;
    this.#reply = undefined;
  }

  // --- device side -------------------------------------------------------------------------

  #scanDevice(chunk: Buffer, forward: boolean): void {
    let pos = 0;
    while (pos < chunk.length) {
      this.#deviceEnded = false;
      const wasBusy = this.#deviceBusy;
      // Refusals that fall due while these bytes are scanned wait until they have been passed on.
      this.#deviceBusy = true;
      const n = this.#device.push(chunk.subarray(pos));
      this.#device.resume();
      const wire = chunk.subarray(pos, pos + n);
      pos += n;
      if (forward) this.#out.toClient.push(wire);
      if (this.#deviceEnded) {
        this.#deviceBusy = false;
        this.#flushQueue();
      } else if (this.#framing === 'chunked') {
        this.#deviceBusy = this.#device.inMessage; // no bytes between chunked messages
      } else {
        this.#deviceBusy = wasBusy || !isBlank(wire); // end-of-message framing: blanks between messages are harmless
      }
      if (this.#devicePhase === 'await-peer') {
        // The rest of this chunk passes now and is scanned once the client's hello is known.
        if (forward && pos < chunk.length) this.#out.toClient.push(chunk.subarray(pos));
        this.#deviceUnscanned.push(Buffer.from(chunk.subarray(pos)));
        this.#deviceUnscannedBytes += chunk.length - pos;
        return;
      }
    }
  }

  #deviceData(seg: Buffer): void {
    if (this.#devicePhase === 'hello') {
      this.#deviceHelloBytes += seg.length;
      if (this.#deviceHelloBytes > this.#opts.maxHelloBytes) throw new FramingError(`to_client: hello exceeds ${this.#opts.maxHelloBytes} bytes`);
      this.#deviceHello.push(Buffer.from(seg));
      return;
    }
    const room = 512 - this.#deviceHeadBytes; // enough for the root element's name
    if (room > 0) {
      const part = seg.subarray(0, room);
      this.#deviceHead.push(Buffer.from(part));
      this.#deviceHeadBytes += part.length;
    }
  }

  #deviceEnd(): void {
    this.#deviceEnded = true;
    this.#device.pause();
    if (this.#devicePhase === 'hello') {
      this.#deviceCaps = parseHello(Buffer.concat(this.#deviceHello, this.#deviceHelloBytes)).capabilities;
      this.#deviceHello = [];
      this.#devicePhase = 'await-peer';
      this.#framingKnown();
      return;
    }
    const head = Buffer.concat(this.#deviceHead, this.#deviceHeadBytes).toString('utf8');
    this.#deviceHead = [];
    this.#deviceHeadBytes = 0;
    if (readMessageHead(head)?.root === 'rpc-reply') this.#replies++;
  }

  /** Once both hellos are known: the framing, then whatever waited for it. */
  #framingKnown(): void {
    if (!this.#clientCaps || !this.#deviceCaps || this.#framing) return;
    this.#framing = negotiatedFraming(this.#clientCaps, this.#deviceCaps);
    this.#client.setFraming(this.#framing);
    this.#device.setFraming(this.#framing);
    this.#clientPhase = 'running';
    this.#devicePhase = 'running';
    const device = this.#deviceUnscanned;
    this.#deviceUnscanned = [];
    this.#deviceUnscannedBytes = 0;
    for (const b of device) this.#scanDevice(b, false);
    const client = this.#clientHeld;
    this.#clientHeld = [];
    this.#clientHeldBytes = 0;
    for (const b of client) this.#scanClient(b);
  }

  /** Sends the refusals whose turn has come, between two messages toward the client. */
  #flushQueue(): void {
    while (this.#queue.length > 0 && !this.#deviceBusy && this.#queue[0]!.after <= this.#replies) {
      this.#out.toClient.push(this.#queue.shift()!.bytes);
    }
  }
}
