// The held session's writes, both ways: re-framing, byte events and backpressure between the
// device stream and the client channel, and who is writing a message to the device now.
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Framing } from '../../netconf/framing.js';
import { encodeMessage, encodeSegment, endOfMessage } from '../../netconf/reframe.js';
import type { HeldEvents } from './events.js';
import type { Lend } from './lend.js';
import type { ReplyRouter } from './reply-router.js';

export class Wire {
  /** The framing agreed with the device (end-of-message until its hello is read). */
  framing: Framing = 'eom';
  /** A client message is being written to the device (keepalives must wait). */
  writer: Lend | undefined;

  constructor(
    readonly device: Duplex,
    private readonly events: Pick<HeldEvents, 'bytes' | 'message'>,
    private readonly router: ReplyRouter<Lend>,
  ) {}

  /** Bytes toward `lend`, already in its framing; dropped if it left. */
  toClient(lend: Lend, bytes: Buffer): void {
    if (!lend.present) return; // the rest of a message for a client that left is dropped
    this.events.bytes('to_client', bytes.length);
    if (!lend.channel.write(bytes) && !this.device.isPaused()) {
      // The client reads slowly: stop reading the device until it catches up.
      this.device.pause();
      lend.channel.once('drain', () => this.device.resume());
    }
  }

  /** Part of a device message's payload toward `lend`, in the client's framing. */
  segmentToClient(lend: Lend, seg: Buffer): void {
    for (const b of encodeSegment(lend.framing, seg)) this.toClient(lend, b);
  }

  /** Part of `lend`'s <rpc> toward the device, in the device's framing. */
  segmentToDevice(lend: Lend, seg: Buffer): void {
    this.writer = lend;
    for (const b of encodeSegment(this.framing, seg)) {
      if (!this.raw(b) && !lend.channel.isPaused()) {
        lend.channel.pause();
        this.device.once('drain', () => lend.channel.resume());
      }
    }
  }

  /** Ends the client message being written to the device. */
  endToDevice(): void {
    this.raw(endOfMessage(this.framing));
    this.writer = undefined;
    this.events.message('to_device');
  }

  /**
   * `lend` left. In the middle of a message, the frame is ended so the device session stays
   * in sync; the device answers (an <rpc-error> at worst) and that reply is dropped.
   */
  abandon(lend: Lend): void {
    if (this.writer === lend) {
      this.raw(endOfMessage(this.framing));
      this.writer = undefined;
    }
    this.device.resume();
  }

  /** Sends a request of the gateway's own, whose reply goes to `owner` (not to a client). */
  sendOwn(owner: 'keepalive' | 'gateway', messageId: string, operation: string, rpc: string): void {
    this.router.sent({ owner, messageId, operation, start: performance.now() });
    this.raw(encodeMessage(this.framing, rpc));
  }

  private raw(bytes: Buffer): boolean {
    this.events.bytes('to_device', bytes.length);
    return this.device.write(bytes);
  }
}
