// One client's turn on a held session, and the hello both ends of it exchange.
import type { Duplex } from 'node:stream';
import { GatewayError } from '../../errors.js';
import { FrameScanner, type Framing } from '../../netconf/framing.js';
import { MessageHeadBuffer } from '../../netconf/reframe.js';

/** A client channel: an ssh2 ServerChannel or any Duplex (tests). */
export type ClientChannel = Duplex & { exit?: (code: number) => unknown; stderr?: { write(s: string): unknown } };

export type ServeResult = { result: 'served'; reason: string } | { result: 'busy'; reason: string } | { result: 'unavailable'; reason: string };

/**
 * hello: its <hello> is awaited; open: it sends <rpc>s; closing: it sent <close-session>,
 * answered once its earlier requests are; eof: it sent EOF, ended once its replies are
 * delivered; ended: it left (replies still owed to it are dropped).
 */
export type LendState = 'hello' | 'open' | 'closing' | 'eof' | 'ended';

export class Lend {
  state: LendState = 'hello';
  framing: Framing = 'eom';
  /** Requests sent to the device and not answered yet. */
  outstanding = 0;
  closeMessageId: string | undefined;
  readonly hello: HelloBuffer;
  readonly head = new MessageHeadBuffer();
  /** Where the current message from this client goes once its head is read. */
  route: 'undecided' | 'device' | 'swallow' = 'undecided';
  readonly scanner: FrameScanner;

  constructor(
    readonly id: number,
    readonly channel: ClientChannel,
    readonly finish: (r: ServeResult) => void,
    handlers: { data: (seg: Buffer) => void; end: () => void },
    limits: { maxMessageBytes: number; maxHelloBytes: number },
  ) {
    this.hello = new HelloBuffer('client', limits.maxHelloBytes);
    // RFC 6242 §4.1: hellos are always in end-of-message framing.
    this.scanner = new FrameScanner('eom', handlers, { maxMessageBytes: limits.maxMessageBytes });
  }

  get present(): boolean {
    return this.state !== 'ended';
  }
  /** Past its hello and still here: it may be sent notifications. */
  get talking(): boolean {
    return this.state === 'open' || this.state === 'closing' || this.state === 'eof';
  }
}

/** Collects a peer's <hello> up to a size limit. */
export class HelloBuffer {
  #parts: Buffer[] = [];
  #bytes = 0;
  constructor(
    private readonly who: 'device' | 'client',
    private readonly limit: number,
  ) {}

  add(seg: Buffer): void {
    this.#bytes += seg.length;
    if (this.#bytes > this.limit) throw new GatewayError('GW_ERR_NOT_NETCONF', `${this.who} <hello> exceeds ${this.limit} bytes`);
    this.#parts.push(Buffer.from(seg));
  }

  take(): Buffer {
    const all = Buffer.concat(this.#parts, this.#bytes);
    this.#parts = [];
    return all;
  }
}
