// A client channel seen through an RpcFilter, for a held device session (device/held/session.ts)
// that reads and writes the channel itself: what the client sends passes the filter before
// the held session reads it, what the held session writes passes it on the way out, and the
// filter's own answers go straight to the client. Counts the bytes both ways for the API.
import { Duplex, type Writable } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import { describeError } from '../errors.js';
import type { FilterOutput, RpcFilter } from '../netconf/rpc-filter.js';

export class FilteredChannel extends Duplex {
  bytesToDevice = 0;
  bytesToClient = 0;

  constructor(
    private readonly inner: ServerChannel,
    readonly rpcFilter: RpcFilter,
  ) {
    super({ allowHalfOpen: true });
    inner.on('data', (chunk: Buffer) => this.fromClient(chunk));
    inner.once('end', () => this.push(null));
    inner.once('close', () => this.destroy());
    inner.on('error', () => {}); // its close follows, and ends the lend
  }

  get stderr(): Writable {
    return this.inner.stderr;
  }

  exit(code: number): void {
    this.inner.exit(code);
  }

  override _read(): void {
    this.inner.resume();
  }

  private fromClient(chunk: Buffer): void {
    this.bytesToDevice += chunk.length;
    const out = this.apply(() => this.rpcFilter.fromClient(chunk));
    if (out) this.deliver(out);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const out = this.apply(() => this.rpcFilter.fromDevice(chunk));
    if (!out || this.deliver(out)) done();
    else this.inner.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.inner.end();
    done();
  }

  /** Passes the filter's output on; false when the client's channel asks the writer to wait. */
  private deliver(out: FilterOutput): boolean {
    for (const b of out.toDevice) if (!this.push(b)) this.inner.pause();
    let ok = true;
    for (const b of out.toClient) {
      this.bytesToClient += b.length;
      ok = this.inner.write(b);
    }
    return ok;
  }

  private apply(step: () => FilterOutput): FilterOutput | undefined {
    try {
      return step();
    } catch (err) {
      // Broken framing: the session cannot be followed any more, so it ends.
      this.inner.stderr.write(`callhome-gateway: ${describeError(err)}\n`);
      this.inner.exit(1);
      this.inner.close();
      return undefined;
    }
  }
}
