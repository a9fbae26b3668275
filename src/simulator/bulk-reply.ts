// The wire pieces of a simulated <data> reply of an exact size: filler entries in a virtual
// <bulk> element bring the whole message to the configured reply size, written as 64 KiB
// pieces so a large reply is produced as the channel takes it, never held whole. Pure.
import { END_OF_CHUNKS, EOM_MARKER } from '../netconf/vocabulary.js';
import { SIM_NS } from './datastore.js';
import { chunkHeader, frameMessage, type Framing } from './framing.js';

/** One chunk of a big reply: 64 KiB including its chunk header, two full SSH packets. */
const BLOCK = 64 * 1024;
const ITEM = 64;

/**
 * `head` and `tail` are the reply around its data; `size` the payload bytes wanted (0 or
 * less than head and tail need: no filler). The same Buffer may be yielded several times.
 */
export function* dataReplyPieces(head: Buffer, tail: Buffer, size: number, framing: Framing): Generator<Buffer> {
  const open = Buffer.from(`<bulk xmlns="${SIM_NS}">`);
  const close = Buffer.from('</bulk>');
  const fill = size - head.length - tail.length - open.length - close.length;
  if (fill < 0) {
    yield frameMessage(Buffer.concat([head, tail]), framing);
    return;
  }
  const chunked = framing === 'chunked';
  const blockContent = chunked ? BLOCK - chunkHeader(BLOCK).length : BLOCK;
  const blocks = Math.floor(fill / blockContent);
  const first = Buffer.concat([head, open]);
  const last = Buffer.concat([fillerBytes(fill % blockContent), close, tail]);
  if (chunked) {
    yield Buffer.concat([chunkHeader(first.length), first]);
    if (blocks > 0) {
      const block = Buffer.concat([chunkHeader(blockContent), fillerBytes(blockContent)]);
      for (let i = 0; i < blocks; i++) yield block;
    }
    yield Buffer.concat([chunkHeader(last.length), last, END_OF_CHUNKS]);
  } else {
    yield first;
    if (blocks > 0) {
      const block = fillerBytes(blockContent);
      for (let i = 0; i < blocks; i++) yield block;
    }
    yield Buffer.concat([last, EOM_MARKER]);
  }
}

/** `n` bytes of filler: 64-byte <item> entries, padded with newlines. */
function fillerBytes(n: number): Buffer {
  const buf = Buffer.alloc(n, 0x0a);
  const item = Buffer.from(`<item>${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(2).slice(0, ITEM - 14)}</item>\n`);
  const count = Math.floor(n / ITEM);
  for (let i = 0; i < count; i++) item.copy(buf, i * ITEM);
  return buf;
}
