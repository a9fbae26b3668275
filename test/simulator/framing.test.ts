import test from 'ava';
import { FrameReader, FramingError, frameMessage, type Framing } from '../../src/simulator/framing.js';

interface Got {
  messages: string[];
  oversized: Array<{ prefix: string; size: number }>;
}

function reader(max = 1 << 20, switchAfterFirst?: Framing, prefixSize?: number): [FrameReader, Got] {
  const got: Got = { messages: [], oversized: [] };
  const r: FrameReader = new FrameReader(
    {
      message: (b) => {
        got.messages.push(b.toString());
        if (switchAfterFirst && got.messages.length === 1) r.framing = switchAfterFirst;
      },
      oversized: (p, size) => got.oversized.push({ prefix: p.toString(), size }),
    },
    { maxMessageSize: max, prefixSize },
  );
  return [r, got];
}

/** Feeds `bytes` cut at the given offsets. */
function feed(r: FrameReader, bytes: Buffer, cuts: number[]): void {
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    r.push(bytes.subarray(at, c));
    at = c;
  }
}

// A hello in end-of-message framing, then chunked messages, one of them in several chunks:
// the stream a server reads from a base:1.1 client.
const hello = '<hello><capabilities/></hello>';
const m1 = '<rpc message-id="1"><get/></rpc>';
const m2 = '<rpc message-id="2">x]]>]]>y</rpc>'; // an EOM marker is just data in chunked framing
const stream = Buffer.concat([Buffer.from(`${hello}]]>]]>`), frameMessage(m1, 'chunked'), Buffer.from(`\n#3\n<rp\n#${m2.length - 3}\n${m2.slice(3)}\n##\n`)]);

test('every single split of hello + chunked messages gives the same messages', (t) => {
  for (let i = 0; i <= stream.length; i++) {
    const [r, got] = reader(1 << 20, 'chunked');
    feed(r, stream, [i]);
    t.deepEqual(got.messages, [hello, m1, m2], `split at ${i}`);
  }
});

test('every pair of splits, and byte by byte', (t) => {
  for (let i = 0; i <= stream.length; i += 3) {
    for (let j = i; j <= stream.length; j += 2) {
      const [r, got] = reader(1 << 20, 'chunked');
      feed(r, stream, [i, j]);
      t.deepEqual(got.messages, [hello, m1, m2], `splits at ${i}, ${j}`);
    }
  }
  const [r, got] = reader(1 << 20, 'chunked');
  feed(
    r,
    stream,
    Array.from({ length: stream.length }, (_v, k) => k),
  );
  t.deepEqual(got.messages, [hello, m1, m2]);
});

test('end-of-message framing: markers split anywhere, "]" runs before the marker', (t) => {
  const bytes = Buffer.from('a]]]]>]]>b]]>]]>]]>]]>\n<c/>]]>]]>');
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const [r, got] = reader();
      feed(r, bytes, [i, j]);
      t.deepEqual(got.messages, ['a]]', 'b', '', '\n<c/>'], `splits at ${i}, ${j}`);
    }
  }
});

test('a message over the cap is counted, its prefix kept, and the next one still read', (t) => {
  for (const framing of ['eom', 'chunked'] as const) {
    const big = `<rpc message-id="7">${'z'.repeat(5000)}</rpc>`;
    const bytes = Buffer.concat([
      framing === 'eom' ? frameMessage(big, 'eom') : Buffer.from(`\n#2000\n${big.slice(0, 2000)}\n#${big.length - 2000}\n${big.slice(2000)}\n##\n`),
      frameMessage('<ok/>', framing),
    ]);
    for (const cut of [1, 7, 100, 1999, 2006, 3000, bytes.length - 3]) {
      const [r, got] = reader(1000, undefined, 64);
      r.framing = framing;
      feed(r, bytes, [cut]);
      t.deepEqual(got.oversized, [{ prefix: big.slice(0, 64), size: big.length }], `${framing} cut ${cut}`);
      t.deepEqual(got.messages, ['<ok/>'], `${framing} cut ${cut}`);
      t.true(r.pendingBytes === 0);
    }
  }
});

test('bad chunked framing is an error', (t) => {
  const bad = ['\n#0\n', '\n#01\nx', '\n#x\n', '\n##\n', 'x', '\n#5x', '\n#99999999999\n', '\n#1\nab##\n', '\n#1\na\n#\n'];
  for (const b of bad) {
    const [r] = reader();
    r.framing = 'chunked';
    t.throws(() => r.push(Buffer.from(b)), { instanceOf: FramingError }, JSON.stringify(b));
  }
});

test('writers frame as RFC 6242 says', (t) => {
  t.is(frameMessage('<a/>', 'eom').toString(), '<a/>]]>]]>');
  t.is(frameMessage('<a/>', 'chunked').toString(), '\n#4\n<a/>\n##\n');
  t.throws(() => frameMessage('', 'chunked'));
});
