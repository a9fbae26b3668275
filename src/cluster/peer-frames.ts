// The framing of a forwarded session between two replicas (docs/CLUSTER.md "Forwarding"):
// each frame is one type byte, a 32-bit big-endian length and that many payload bytes. Pure:
// the decoder keeps its state across chunks (a header or payload may be split anywhere)
// and enforces a size cap per type, so a peer can never make it buffer more than one frame.
import { GatewayError } from '../errors.js';

export const FrameType = {
  /** B → A, first frame: the session asked for (JSON, PeerRequest). */
  Open: 0x4f, // 'O'
  /** A → B, first frame: accepted or refused (JSON, PeerReply). */
  Reply: 0x52, // 'R'
  /** NETCONF bytes, unchanged. */
  Data: 0x44, // 'D'
  /** The sender will send no more Data (SSH EOF). */
  Eof: 0x45, // 'E'
  /** A → B: a line for the client's stderr (UTF-8). */
  Stderr: 0x53, // 'S'
  /** A → B: the device's exit status (JSON {code}). */
  Exit: 0x58, // 'X'
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const HEADER_BYTES = 5;
/** Data payloads are cut to this size by the encoder and refused above it by the decoder. */
export const MAX_DATA_BYTES = 64 * 1024;
/** Every other frame: a small JSON object or one line of text. */
export const MAX_CONTROL_BYTES = 4096;

const KNOWN = new Set<number>(Object.values(FrameType));

export function encodeFrame(type: FrameTypeCode, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const limit = type === FrameType.Data ? MAX_DATA_BYTES : MAX_CONTROL_BYTES;
  if (body.length > limit) throw new RangeError(`frame payload of ${body.length} bytes exceeds ${limit}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame[0] = type;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

/** Data frames for `chunk`, each at most MAX_DATA_BYTES long. */
export function encodeData(chunk: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < chunk.length; at += MAX_DATA_BYTES) frames.push(encodeFrame(FrameType.Data, chunk.subarray(at, at + MAX_DATA_BYTES)));
  return frames;
}

export type FrameHandler = (type: FrameTypeCode, payload: Buffer) => void;

export class FrameDecoder {
  private header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private type: FrameTypeCode | undefined;
  private payload: Buffer | undefined;
  private payloadFill = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  /** Feeds bytes; calls onFrame for each complete frame; throws GW_ERR_PROTOCOL on a bad frame. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.type === undefined) {
        const n = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + n);
        this.headerFill += n;
        at += n;
        if (this.headerFill < HEADER_BYTES) return;
        this.startFrame();
        if (this.payload === undefined) continue; // empty payload: delivered already
      }
      const want = this.payload!.length - this.payloadFill;
      // A Data frame that arrives whole in this chunk is handed on without a copy.
      if (this.payloadFill === 0 && chunk.length - at >= want) {
        const whole = chunk.subarray(at, at + want);
        at += want;
        this.deliver(whole);
        continue;
      }
      const n = Math.min(want, chunk.length - at);
      chunk.copy(this.payload!, this.payloadFill, at, at + n);
      this.payloadFill += n;
      at += n;
      if (this.payloadFill === this.payload!.length) this.deliver(this.payload!);
    }
  }

  /** True between frames: a stream that ends here ended cleanly. */
  get idle(): boolean {
    return this.type === undefined && this.headerFill === 0;
  }

  private startFrame(): void {
    const type = this.header[0]!;
    const length = this.header.readUInt32BE(1);
    this.headerFill = 0;
    if (!KNOWN.has(type)) throw new GatewayError('GW_ERR_PROTOCOL', `peer sent an unknown frame type 0x${type.toString(16)}`);
    const limit = type === FrameType.Data ? MAX_DATA_BYTES : MAX_CONTROL_BYTES;
    if (length > limit) throw new GatewayError('GW_ERR_PROTOCOL', `peer sent a frame of ${length} bytes (at most ${limit})`);
    this.type = type as FrameTypeCode;
    if (length === 0) {
      this.deliver(Buffer.alloc(0));
      return;
    }
    this.payload = Buffer.allocUnsafe(length);
    this.payloadFill = 0;
  }

  private deliver(payload: Buffer): void {
    const type = this.type!;
    this.type = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    this.onFrame(type, payload);
  }
}
