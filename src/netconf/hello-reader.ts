// Collects the first NETCONF message on a stream, the <hello>, which is always in
// end-of-message framing (RFC 6242 §4.1), from reads of any size. Each byte is scanned once
// and the pieces are joined once at the end, so a hello sent a few bytes at a time costs no
// more than one sent whole (re-joining and re-searching everything per read is quadratic).
import { FrameScanner } from './framing.js';

export class HelloReader {
  private parts: Buffer[] = [];
  private size = 0;
  private complete = false;
  private scannedBytes = 0;
  private readonly scanner: FrameScanner;

  /** Throws a FramingError from push() once the hello exceeds `maxHelloBytes`. */
  constructor(maxHelloBytes: number) {
    this.scanner = new FrameScanner(
      'eom',
      {
        data: (segment) => {
          // Copied: the caller may reuse its buffers.
          this.parts.push(Buffer.from(segment));
          this.size += segment.length;
        },
        end: () => {
          this.complete = true;
          this.scanner.pause();
        },
      },
      { maxMessageBytes: maxHelloBytes },
    );
  }

  /** Input bytes examined so far; at most the bytes pushed (what follows the hello is not read). */
  get scanned(): number {
    return this.scannedBytes;
  }

  /** Feeds one read; returns the hello's payload (marker removed) once it is complete. */
  push(chunk: Buffer): Buffer | undefined {
    if (this.complete) return undefined;
    this.scannedBytes += this.scanner.push(chunk);
    if (!this.complete) return undefined;
    const hello = Buffer.concat(this.parts, this.size);
    this.parts = [];
    return hello;
  }
}
