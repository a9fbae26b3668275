// One forwarded session's connection between two replicas, as a stream of NETCONF bytes:
// Data frames are its readable and writable sides, an Eof frame its end, so the splice
// (splice/splice.ts) treats it like an SSH channel. Backpressure is the socket's own: a
// reader that stops pauses the socket (TCP then slows the sender), and a write waits for the
// socket's 'drain', so neither replica buffers more than a frame beyond the stream's mark.
// The owner's side also sends the client's stderr lines and the device's exit status.
import { Duplex, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { GatewayError, describeError } from '../errors.js';
import { FrameDecoder, FrameType, MAX_CONTROL_BYTES, encodeData, encodeFrame, type FrameTypeCode } from './peer-frames.js';

/** How long a closing stream waits for the other replica to close its end before dropping the socket. */
const CLOSE_GRACE_MS = 2000;

/**
 * Emits 'exit' (code) on the owner's Exit frame and 'stderr' (line) on its Stderr frames.
 * `first` resolves with the payload of the first frame, which must be of type `expect`.
 */
export class PeerStream extends Duplex {
  readonly first: Promise<Buffer>;
  /** The exit status the other side sent, once it has. */
  exitCode: number | undefined;
  private firstSettle: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private readonly decoder: FrameDecoder;
  private readableDone = false;
  private closing = false;
  private waitingDrain: (() => void) | undefined;
  private stderrStream: Writable | undefined;
  private socketError: Error | undefined;

  constructor(
    readonly socket: Socket,
    private readonly expect: FrameTypeCode,
  ) {
    super({ allowHalfOpen: true, autoDestroy: false, highWaterMark: 64 * 1024 });
    this.first = new Promise((resolve, reject) => (this.firstSettle = { resolve, reject }));
    this.first.catch(() => {}); // whoever awaits it sees the reason; nobody may
    this.on('error', () => {}); // a failure before the splice has nobody listening; the splice sees it too
    this.decoder = new FrameDecoder((type, payload) => this.onFrame(type, payload));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.fail(err instanceof GatewayError ? err : new GatewayError('GW_ERR_PROTOCOL', describeError(err)));
      }
    });
    socket.on('end', () => this.endReadable());
    socket.on('error', (err: Error) => (this.socketError ??= err)); // 'close' follows and settles everything
    socket.on('close', () => this.onSocketClose());
  }

  /** Sends one control frame (Open, Reply, Stderr, Exit); dropped once the socket is gone. */
  send(type: FrameTypeCode, payload: Buffer | string = ''): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeFrame(type, payload));
  }

  /** The other side's stderr (the owner side: what the manager's ssh prints). */
  get stderr(): Writable {
    this.stderrStream ??= new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.send(FrameType.Stderr, chunk.subarray(0, MAX_CONTROL_BYTES));
        cb();
      },
    });
    return this.stderrStream;
  }

  /** Sends an exit status; unlike an SSH channel's, it may follow the stream's end (as SSH's exit-status follows EOF). */
  exit(code: number): void {
    this.send(FrameType.Exit, JSON.stringify({ code }));
  }

  /** Ends the connection once what was written has gone out (what an SSH channel's close() is to the splice). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Drops the connection with a reason (a protocol error, a deadline). */
  fail(reason: GatewayError): void {
    this.firstSettle?.reject(reason);
    this.firstSettle = undefined;
    this.destroy(reason);
  }

  private onFrame(type: FrameTypeCode, payload: Buffer): void {
    if (this.firstSettle) {
      if (type !== this.expect)
        throw new GatewayError('GW_ERR_PROTOCOL', `peer sent frame 0x${type.toString(16)} before its ${this.expect === FrameType.Open ? 'request' : 'reply'}`);
      const { resolve } = this.firstSettle;
      this.firstSettle = undefined;
      resolve(payload);
      return;
    }
    switch (type) {
      case FrameType.Data:
        if (this.readableDone) throw new GatewayError('GW_ERR_PROTOCOL', 'peer sent data after its EOF');
        if (!this.push(payload)) this.socket.pause();
        return;
      case FrameType.Eof:
        this.endReadable();
        return;
      case FrameType.Stderr:
        this.emit('stderr', payload.toString('utf8'));
        return;
      case FrameType.Exit: {
        const code = (JSON.parse(payload.toString('utf8')) as { code?: unknown }).code;
        if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255) throw new GatewayError('GW_ERR_PROTOCOL', 'peer sent a malformed exit status');
        this.exitCode = code;
        this.emit('exit', code);
        return;
      }
      default:
        throw new GatewayError('GW_ERR_PROTOCOL', `peer sent frame 0x${type.toString(16)} in the middle of a session`);
    }
  }

  private endReadable(): void {
    if (this.readableDone) return;
    this.readableDone = true;
    this.push(null);
  }

  private onSocketClose(): void {
    const why = this.socketError ? describeError(this.socketError) : 'the other replica closed the connection';
    this.firstSettle?.reject(new GatewayError('GW_ERR_DEVICE_CLOSED', why));
    this.firstSettle = undefined;
    this.waitingDrain?.();
    this.waitingDrain = undefined;
    this.endReadable();
    // Like an SSH channel: 'close' once what was received has been read (or at once if it was).
    if (this.readableEnded || this.destroyed) this.destroy();
    else this.once('end', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed || !this.socket.writable) {
      cb(); // the other side is gone: what was meant for it is dropped, as on a closed channel
      return;
    }
    let flushed = true;
    for (const frame of encodeData(chunk)) flushed = this.socket.write(frame);
    if (flushed) cb();
    else {
      this.waitingDrain = () => cb();
      this.socket.once('drain', () => {
        const go = this.waitingDrain;
        this.waitingDrain = undefined;
        go?.();
      });
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.send(FrameType.Eof);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}
