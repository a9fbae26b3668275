// RFC 6242 message framing for the simulated device: a reader that keeps its state across
// reads (a marker or a chunk header may be split anywhere) and caps what it buffers, and the
// matching writers. Pure: no streams, no timers.

export type Framing = 'eom' | 'chunked';

/** RFC 6242 §4.3 end-of-message marker. */
export const EOM_MARKER = Buffer.from(']]>]]>');
/** RFC 6242 §4.2 end-of-chunks. */
export const END_OF_CHUNKS = Buffer.from('\n##\n');
/** RFC 6242 §4.2: chunk-size = 1..4294967295. */
export const MAX_CHUNK_SIZE = 4294967295;

export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

export interface FrameSink {
  /** A complete message no larger than the cap. */
  message(body: Buffer): void;
  /** A message over the cap: only its first bytes were kept, the rest was counted and dropped. */
  oversized(prefix: Buffer, size: number): void;
}

type ChunkState = 'lf' | 'hash' | 'size-first' | 'size' | 'data' | 'end-lf';

export interface FrameReaderOptions {
  /** Largest message kept whole; larger ones reach `oversized`. */
  maxMessageSize: number;
  /** How much of an oversized message is kept (enough to find its message-id). */
  prefixSize?: number;
  framing?: Framing;
}

export class FrameReader {
  /** Switch between messages (after the hello); the rest of the current read uses the new mode. */
  framing: Framing;
  private readonly sink: FrameSink;
  private readonly max: number;
  private readonly prefixSize: number;
  private parts: Buffer[] = [];
  private size = 0;
  private overflow = false;
  private stopped = false;
  // end-of-message: up to 5 trailing bytes that may be the start of a split marker
  private held: Buffer | undefined;
  // chunked
  private state: ChunkState = 'lf';
  private chunkSize = 0;
  private remaining = 0;
  private chunksInMessage = 0;

  constructor(sink: FrameSink, options: FrameReaderOptions) {
    this.sink = sink;
    this.max = options.maxMessageSize;
    this.prefixSize = Math.min(options.prefixSize ?? 64 * 1024, options.maxMessageSize);
    this.framing = options.framing ?? 'eom';
  }

  /** Stop delivering messages (the session is going away); later input is ignored. */
  stop(): void {
    this.stopped = true;
    this.parts = [];
    this.held = undefined;
  }

  /** Bytes of an unfinished message (for diagnostics and tests). */
  get pendingBytes(): number {
    return this.size + (this.held?.length ?? 0);
  }

  push(data: Buffer): void {
    let buf = data;
    while (buf.length > 0 && !this.stopped) {
      buf = this.framing === 'eom' ? this.pushEom(buf) : this.pushChunked(buf);
    }
  }

  /** Consumes up to and including one end-of-message marker; returns what is left. */
  private pushEom(data: Buffer): Buffer {
    let buf = data;
    if (this.held !== undefined) {
      buf = Buffer.concat([this.held, data]);
      this.held = undefined;
    }
    const at = buf.indexOf(EOM_MARKER);
    if (at === -1) {
      // the last 5 bytes may be the first 5 of a marker completed by the next read
      const keep = Math.min(EOM_MARKER.length - 1, buf.length);
      this.append(buf.subarray(0, buf.length - keep));
      this.held = buf.subarray(buf.length - keep);
      return Buffer.alloc(0);
    }
    this.append(buf.subarray(0, at));
    this.finish();
    return buf.subarray(at + EOM_MARKER.length);
  }

  /** RFC 6242 §4.2: chunked-message = 1*chunk end-of-chunks. Consumes up to one message. */
  private pushChunked(buf: Buffer): Buffer {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        this.append(buf.subarray(i, i + n));
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'lf';
        continue;
      }
      const c = buf[i++]!;
      switch (this.state) {
        case 'lf':
          if (c !== 0x0a) throw new FramingError('chunked framing: expected LF before chunk header');
          this.state = 'hash';
          break;
        case 'hash':
          if (c !== 0x23) throw new FramingError('chunked framing: expected "#" in chunk header');
          this.state = 'size-first';
          break;
        case 'size-first':
          if (c === 0x23) {
            if (this.chunksInMessage === 0) throw new FramingError('chunked framing: end-of-chunks without a chunk');
            this.state = 'end-lf';
          } else if (c >= 0x31 && c <= 0x39) {
            this.chunkSize = c - 0x30;
            this.state = 'size';
          } else {
            throw new FramingError('chunked framing: bad chunk-size');
          }
          break;
        case 'size':
          if (c >= 0x30 && c <= 0x39) {
            this.chunkSize = this.chunkSize * 10 + (c - 0x30);
            if (this.chunkSize > MAX_CHUNK_SIZE) throw new FramingError('chunked framing: chunk-size too large');
          } else if (c === 0x0a) {
            this.remaining = this.chunkSize;
            this.chunksInMessage++;
            this.state = 'data';
          } else {
            throw new FramingError('chunked framing: bad chunk-size');
          }
          break;
        case 'end-lf':
          if (c !== 0x0a) throw new FramingError('chunked framing: expected LF after "##"');
          this.state = 'lf';
          this.chunksInMessage = 0;
          this.finish();
          return buf.subarray(i);
      }
    }
    return Buffer.alloc(0);
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    this.size += b.length;
    if (this.overflow) return;
    if (this.size <= this.max) {
      this.parts.push(b);
      return;
    }
    // Over the cap: keep a copied prefix (so the big reads can be freed) and count the rest.
    this.overflow = true;
    this.parts.push(b);
    const all = Buffer.concat(this.parts);
    this.parts = [Buffer.from(all.subarray(0, this.prefixSize))];
  }

  private finish(): void {
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
