// RFC 6242 message framing for the simulated device: a reader that delivers whole messages
// (capped: an oversized one is counted and dropped, keeping only its start so it can be
// answered), built on the gateway's own scanner in src/netconf/framing.ts, and the writers.
// Pure: no streams, no timers.
import { FrameScanner, FramingError, MAX_CHUNK_SIZE, type Framing } from '../netconf/framing.js';
import { END_OF_CHUNKS, EOM_MARKER } from '../netconf/vocabulary.js';

export { FramingError, MAX_CHUNK_SIZE, type Framing };

export interface FrameSink {
  /** A complete message no larger than the cap. */
  message(body: Buffer): void;
  /** A message over the cap: only its first bytes were kept, the rest was counted and dropped. */
  oversized(prefix: Buffer, size: number): void;
}

export interface FrameReaderOptions {
  /** Largest message kept whole; larger ones reach `oversized`. */
  maxMessageSize: number;
  /** How much of an oversized message is kept (enough to find its message-id). */
  prefixSize?: number;
  framing?: Framing;
}

export class FrameReader {
  private readonly scanner: FrameScanner;
  private readonly max: number;
  private readonly prefixSize: number;
  private parts: Buffer[] = [];
  private size = 0;
  private overflow = false;
  private stopped = false;

  constructor(
    private readonly sink: FrameSink,
    options: FrameReaderOptions,
  ) {
    this.max = options.maxMessageSize;
    this.prefixSize = Math.min(options.prefixSize ?? 64 * 1024, options.maxMessageSize);
    // The scanner itself is uncapped: an oversized request is answered, not a framing error.
    this.scanner = new FrameScanner(options.framing ?? 'eom', { data: (seg) => this.append(seg), end: () => this.finish() }, { maxMessageBytes: Number.POSITIVE_INFINITY });
  }

  /** Switch between messages (after the hello); the rest of the current read uses the new mode. */
  get framing(): Framing {
    return this.scanner.framing;
  }
  set framing(framing: Framing) {
    this.scanner.setFraming(framing);
  }

  /** Stop delivering messages (the session is going away); later input is ignored. */
  stop(): void {
    this.stopped = true;
    this.parts = [];
  }

  /** Bytes of an unfinished message (for diagnostics and tests). */
  get pendingBytes(): number {
    return this.size + this.scanner.heldBytes;
  }

  /** Throws FramingError on malformed framing. */
  push(data: Buffer): void {
    if (!this.stopped) this.scanner.push(data);
  }

  private append(segment: Buffer): void {
    if (this.stopped) return;
    this.size += segment.length;
    if (this.overflow) return;
    if (this.size <= this.max) {
      // Segments are views of the caller's buffer, which it may reuse: copy.
      this.parts.push(Buffer.from(segment));
      return;
    }
    this.overflow = true;
    const all = Buffer.concat([...this.parts, segment]);
    this.parts = [Buffer.from(all.subarray(0, this.prefixSize))];
  }

  private finish(): void {
    if (this.stopped) return;
    const { parts, size, overflow } = this;
    this.parts = [];
    this.size = 0;
    this.overflow = false;
    if (overflow) this.sink.oversized(parts[0] ?? Buffer.alloc(0), size);
    else this.sink.message(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
  }
}

/** One message, framed. Chunked output is a single chunk (RFC 6242 §4.2 allows any split). */
export function frameMessage(body: Buffer | string, framing: Framing): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  if (framing === 'eom') return Buffer.concat([b, EOM_MARKER]);
  if (b.length === 0) throw new RangeError('a chunked message needs at least one byte');
  return Buffer.concat([chunkHeader(b.length), b, END_OF_CHUNKS]);
}

/** RFC 6242 §4.2 chunk header: LF HASH chunk-size LF. */
export function chunkHeader(size: number): Buffer {
  if (!Number.isInteger(size) || size < 1 || size > MAX_CHUNK_SIZE) throw new RangeError(`bad chunk size ${size}`);
  return Buffer.from(`\n#${size}\n`);
}
