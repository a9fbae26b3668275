// Writing NETCONF messages in a chosen RFC 6242 framing, segment by segment, so a message
// read in one framing (by FrameScanner) can be passed on in the other without buffering it:
// end-of-message → chunked makes each segment one chunk; chunked → end-of-message appends
// the marker. Pure functions of their input; no streams.
import type { Framing } from './framing.js';
import { END_OF_CHUNKS, EOM_MARKER } from './vocabulary.js';

/** The wire bytes carrying `segment` (payload, never empty) inside a message in `framing`. */
export function encodeSegment(framing: Framing, segment: Buffer): Buffer[] {
  if (segment.length === 0) return [];
  // RFC 6242 §4.2: chunk = LF HASH chunk-size LF chunk-data.
  return framing === 'chunked' ? [Buffer.from(`\n#${segment.length}\n`, 'latin1'), segment] : [segment];
}

/** The bytes that end a message in `framing` (RFC 6242 §4.2 end-of-chunks, §4.3 marker). */
export function endOfMessage(framing: Framing): Buffer {
  return framing === 'chunked' ? END_OF_CHUNKS : EOM_MARKER;
}

/** One whole message (payload) in `framing`. */
export function encodeMessage(framing: Framing, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([...encodeSegment(framing, body), endOfMessage(framing)]);
}

/**
 * Collects the first bytes of a message, up to `limit`, so its head (root element,
 * message-id, operation) can be read before deciding where the message goes.
 */
export class MessageHeadBuffer {
  #parts: Buffer[] = [];
  #size = 0;
  constructor(readonly limit = 4096) {}

  /** Copies `segment` in; true once `limit` bytes are held. */
  add(segment: Buffer): boolean {
    this.#parts.push(Buffer.from(segment));
    this.#size += segment.length;
    return this.#size >= this.limit;
  }

  get size(): number {
    return this.#size;
  }

  /** What was collected; resets the buffer. */
  take(): Buffer {
    const all = Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    return all;
  }
}
