// RFC 6242 message framing as incremental scanners that keep their state across reads.
// Payload is reported as segments of the input, never buffered, so a multi-GiB reply is
// observed in constant memory; at most a 5-byte partial end-of-message marker is withheld.
import { GatewayError } from '../errors.js';
import { EOM_MARKER } from './vocabulary.js';

export type Framing = 'eom' | 'chunked';

/**
 * The byte stream breaks RFC 6242 framing or a size cap. `GW_ERR_NOT_NETCONF` is used (by
 * hello.ts) when the framing is fine but the first message is not a NETCONF <hello>.
 */
export class FramingError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown; code?: 'GW_ERR_FRAMING' | 'GW_ERR_NOT_NETCONF' }) {
    super(options?.code ?? 'GW_ERR_FRAMING', message, options);
    this.name = 'FramingError';
  }
}

/** Receives one message at a time: its payload bytes in order, then its end. */
export interface FrameSink {
  /**
   * Payload bytes of the current message (framing removed). Usually a subarray of the
   * pushed chunk: read it during the call, or copy it; never retain it expecting it to stay valid
   * if the caller reuses its buffers. Never empty.
   */
  data(segment: Buffer): void;
  /** The current message is complete. setFraming() and pause() may be called from here. */
  end(): void;
}

export interface FrameScannerOptions {
  /** Largest payload (bytes, framing excluded) of one message; more is a FramingError. */
  maxMessageBytes: number;
}

/** RFC 6242 §4.2: "the maximum allowed chunk-size value is 4294967295". */
export const MAX_CHUNK_SIZE = 4294967295;

const RBRACKET = 0x5d; // ]
const GT = 0x3e; // >
const LF = 0x0a;
const HASH = 0x23;

// Longest prefix of "]]>]]>" that is a suffix of the input so far, after one more byte
// (a KMP automaton; only ']' and '>' can extend or keep a partial match).
const ON_RBRACKET = [1, 2, 2, 4, 5, 2];
const ON_GT = [0, 0, 3, 0, 0, 6];

// Chunked-framing states, RFC 6242 §4.2:
//   chunk         = LF HASH chunk-size LF chunk-data
//   end-of-chunks = LF HASH HASH LF
const EXPECT_LF = 0; // the LF that opens a chunk header or the end-of-chunks
const EXPECT_HASH = 1;
const EXPECT_SIZE_OR_HASH = 2; // first digit (DIGIT1), or the second HASH of end-of-chunks
const IN_SIZE = 3; // further digits, or the LF that ends the header
const IN_DATA = 4;
const EXPECT_END_LF = 5; // the LF that ends end-of-chunks

function show(b: number): string {
  const hex = `0x${b.toString(16).padStart(2, '0')}`;
  return b >= 0x20 && b < 0x7f ? `${hex} '${String.fromCharCode(b)}'` : hex;
}

export class FrameScanner {
  #framing: Framing;
  readonly #sink: FrameSink;
  readonly #max: number;
  #failure: FramingError | undefined;
  #paused = false;
  #inMessage = false;
  #messageBytes = 0; // payload bytes of the current message delivered so far

  // End-of-message framing. Unemitted bytes are `#heldPrev` bytes withheld from earlier
  // pushes (always EOM_MARKER[#prevOff, #prevOff + #heldPrev)) followed by the current
  // chunk from `#emitFrom`; the last `#matched` of them may be the start of the marker.
  #matched = 0;
  #heldPrev = 0;
  #prevOff = 0;
  #emitFrom = 0;

  // Chunked framing.
  #state = EXPECT_LF;
  #size = 0; // chunk-size being read
  #remaining = 0; // chunk-data bytes still to come
  #declared = 0; // sum of chunk-sizes of the current message, checked against the cap
  #chunks = 0; // chunks in the current message

  constructor(framing: Framing, sink: FrameSink, opts: FrameScannerOptions) {
    if (!(opts.maxMessageBytes >= 0)) throw new RangeError('maxMessageBytes must be a non-negative number');
    this.#framing = framing;
    this.#sink = sink;
    this.#max = opts.maxMessageBytes;
  }

  get framing(): Framing {
    return this.#framing;
  }

  /** True from the first byte of a message (payload or framing) until its end. */
  get inMessage(): boolean {
    return this.#inMessage;
  }

  /** Bytes of input withheld between pushes (a partial `]]>]]>`; at most 5). */
  get heldBytes(): number {
    return this.#heldPrev;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The error that stopped this scanner, if any; push() throws it again. */
  get failure(): FramingError | undefined {
    return this.#failure;
  }

  /**
   * Switches framing for the next message. Only between messages: in particular from the
   * sink's end() of the <hello>, so the rest of the same chunk is read in the new framing.
   */
  setFraming(framing: Framing): void {
    if (this.#failure) throw this.#failure;
    if (this.#inMessage) throw new FramingError('cannot change framing inside a message');
    this.#framing = framing;
    this.#matched = 0;
    this.#heldPrev = 0;
    this.#prevOff = 0;
    this.#state = EXPECT_LF;
  }

  /**
   * Stop consuming input once the current message has ended (at once if between messages).
   * push() then returns how much of its chunk it consumed; the caller keeps the rest.
   */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
  }

  /**
   * Scans `chunk`, calling the sink synchronously. Returns the number of bytes consumed:
   * `chunk.length` unless paused. Throws FramingError; after any throw (including one from
   * the sink) the scanner stays failed and every later push throws a FramingError.
   */
  push(chunk: Buffer): number {
    if (this.#failure) throw this.#failure;
    let i = 0;
    try {
      while (i < chunk.length && !(this.#paused && !this.#inMessage)) {
        i = this.#framing === 'eom' ? this.#scanEom(chunk, i) : this.#scanChunked(chunk, i);
      }
    } catch (err) {
      this.#failure = err instanceof FramingError ? err : new FramingError('framing scanner stopped by an error in its sink', { cause: err });
      throw err;
    }
    return i;
  }

  // Consumes from `start` up to and including the next complete message end, or to the end
  // of the chunk. Returns the index after what it consumed.
  #scanEom(buf: Buffer, start: number): number {
    this.#inMessage = true;
    this.#emitFrom = start;
    const len = buf.length;
    let m = this.#matched;
    let i = start;
    while (i < len) {
      if (m === 0) {
        // Nothing pending: skip straight to the next ']' (memchr), the only byte that can start the marker.
        const j = buf.indexOf(RBRACKET, i);
        if (j < 0) {
          i = len;
          break;
        }
        i = j;
      }
      const b = buf[i++]!;
      m = b === RBRACKET ? ON_RBRACKET[m]! : b === GT ? ON_GT[m]! : 0;
      if (m === 6) {
        // RFC 6242 §4.3: the message ends at "]]>]]>", which is framing, not payload.
        this.#release(buf, i, 6);
        this.#matched = 0;
        this.#heldPrev = 0;
        this.#prevOff = 0;
        this.#endMessage();
        return i;
      }
    }
    this.#release(buf, len, m);
    // Whatever is still unemitted is exactly the partial marker; it is a prefix of EOM_MARKER.
    this.#matched = m;
    this.#heldPrev = m;
    this.#prevOff = 0;
    return len;
  }

  // Emits every unemitted byte before `end` except the last `keep` (a possible marker start).
  #release(buf: Buffer, end: number, keep: number): void {
    let n = this.#heldPrev + (end - this.#emitFrom) - keep;
    if (n <= 0) return;
    if (this.#messageBytes + n > this.#max) {
      throw new FramingError(`message exceeds ${this.#max} bytes without an end-of-message marker`);
    }
    this.#messageBytes += n;
    if (this.#heldPrev > 0) {
      const p = Math.min(this.#heldPrev, n);
      // Bytes withheld earlier turned out not to be the marker: released as payload (copied,
      // so nobody can write into the shared constant).
      this.#sink.data(Buffer.from(EOM_MARKER.subarray(this.#prevOff, this.#prevOff + p)));
      this.#prevOff += p;
      this.#heldPrev -= p;
      n -= p;
    }
    if (n > 0) {
      this.#sink.data(buf.subarray(this.#emitFrom, this.#emitFrom + n));
      this.#emitFrom += n;
    }
  }

  #scanChunked(buf: Buffer, start: number): number {
    const len = buf.length;
    let i = start;
    while (i < len) {
      if (this.#state === IN_DATA) {
        const n = Math.min(this.#remaining, len - i);
        this.#messageBytes += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = EXPECT_LF;
        this.#sink.data(buf.subarray(i, i + n));
        i += n;
        continue;
      }
      const b = buf[i++]!;
      switch (this.#state) {
        case EXPECT_LF:
          if (b !== LF) {
            throw new FramingError(
              this.#inMessage ? `expected LF to start a chunk header or end-of-chunks, got ${show(b)}` : `expected LF to start a chunked message, got ${show(b)}`,
            );
          }
          this.#inMessage = true;
          this.#state = EXPECT_HASH;
          break;
        case EXPECT_HASH:
          if (b !== HASH) throw new FramingError(`expected '#' after LF in chunk header, got ${show(b)}`);
          this.#state = EXPECT_SIZE_OR_HASH;
          break;
        case EXPECT_SIZE_OR_HASH:
          if (b === HASH) {
            // RFC 6242 §4.2: Chunked-Message = 1*chunk end-of-chunks.
            if (this.#chunks === 0) throw new FramingError('end-of-chunks before any chunk');
            this.#state = EXPECT_END_LF;
          } else if (b >= 0x31 && b <= 0x39) {
            // RFC 6242 §4.2: chunk-size = 1*DIGIT1 0*DIGIT, so no leading zero and no "#0".
            this.#size = b - 0x30;
            this.#checkSize();
            this.#state = IN_SIZE;
          } else if (b === 0x30) {
            throw new FramingError('chunk-size must not be 0 or start with a zero');
          } else {
            throw new FramingError(`expected a chunk-size digit or '#', got ${show(b)}`);
          }
          break;
        case IN_SIZE:
          if (b >= 0x30 && b <= 0x39) {
            this.#size = this.#size * 10 + (b - 0x30);
            this.#checkSize();
          } else if (b === LF) {
            this.#chunks++;
            this.#declared += this.#size;
            this.#remaining = this.#size;
            this.#state = IN_DATA;
          } else {
            throw new FramingError(`expected a digit or LF in chunk-size, got ${show(b)}`);
          }
          break;
        case EXPECT_END_LF:
          if (b !== LF) throw new FramingError(`expected LF to finish end-of-chunks, got ${show(b)}`);
          this.#state = EXPECT_LF;
          this.#chunks = 0;
          this.#declared = 0;
          this.#endMessage();
          return i;
      }
    }
    return len;
  }

  // Checked digit by digit, so an over-long size fails before its LF and never overflows.
  #checkSize(): void {
    if (this.#size > MAX_CHUNK_SIZE) throw new FramingError(`chunk-size exceeds ${MAX_CHUNK_SIZE}`);
    if (this.#declared + this.#size > this.#max) {
      throw new FramingError(`chunked message exceeds ${this.#max} bytes`);
    }
  }

  #endMessage(): void {
    this.#inMessage = false;
    this.#messageBytes = 0;
    this.#sink.end();
  }
}
