import test from 'ava';
import { dataReplyPieces } from '../../src/simulator/bulk-reply.js';
import { FrameReader, type Framing } from '../../src/simulator/framing.js';

function decode(pieces: Buffer[], framing: Framing): Buffer[] {
  const got: Buffer[] = [];
  const reader = new FrameReader({ message: (b) => got.push(b), oversized: () => got.push(Buffer.from('OVERSIZED')) }, { maxMessageSize: 1 << 24, framing });
  for (const p of pieces) reader.push(p);
  return got;
}

const head = Buffer.from('<rpc-reply message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data>');
const tail = Buffer.from('</data></rpc-reply>');

for (const framing of ['eom', 'chunked'] as const) {
  test(`${framing}: a bulk reply is one message of exactly the size asked, in 64 KiB pieces`, (t) => {
    for (const size of [1000, 64 * 1024, 300_001]) {
      const pieces = [...dataReplyPieces(head, tail, size, framing)];
      t.true(
        pieces.every((p) => p.length <= 64 * 1024 + 200),
        'no piece much over 64 KiB',
      );
      const [message, ...rest] = decode(pieces, framing);
      t.deepEqual(rest, []);
      t.is(message!.length, size);
      t.true(message!.subarray(0, head.length).equals(head));
      t.true(message!.subarray(-tail.length).equals(tail));
      t.regex(message!.toString(), /<data><bulk xmlns="urn:callhome-gateway:simulator">(<item>[0-9a-z]{50}<\/item>\n|\n)*<\/bulk><\/data>/);
    }
  });

  test(`${framing}: without room for filler the reply is head and tail only`, (t) => {
    const pieces = [...dataReplyPieces(head, tail, 0, framing)];
    t.is(pieces.length, 1);
    t.deepEqual(decode(pieces, framing), [Buffer.concat([head, tail])]);
  });
}
