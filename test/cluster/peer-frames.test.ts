// The framing of forwarded sessions: every split of the same bytes decodes to the same
// frames, payloads are unchanged, and a peer that sends an unknown type or an oversized
// frame is refused before anything is buffered for it.
import test from 'ava';
import { FrameDecoder, FrameType, HEADER_BYTES, MAX_CONTROL_BYTES, MAX_DATA_BYTES, encodeData, encodeFrame, type FrameTypeCode } from '../../src/cluster/peer-frames.js';
import { PROTOCOL_VERSION, parseReply, parseRequest } from '../../src/cluster/peer-protocol.js';

type Frame = [FrameTypeCode, string];

function decodeAll(chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder((type, payload) => out.push([type, payload.toString('latin1')]));
  for (const c of chunks) d.push(c);
  return out;
}

const stream = (): { bytes: Buffer; frames: Frame[] } => {
  const big = Buffer.alloc(MAX_DATA_BYTES * 2 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  const parts: Buffer[] = [
    encodeFrame(FrameType.Open, '{"v":1}'),
    ...encodeData(Buffer.from('<hello/>]]>]]>')),
    encodeFrame(FrameType.Eof),
    ...encodeData(big),
    encodeFrame(FrameType.Stderr, 'callhome-gateway: bye\n'),
    encodeFrame(FrameType.Exit, '{"code":0}'),
  ];
  const frames: Frame[] = [
    [FrameType.Open, '{"v":1}'],
    [FrameType.Data, '<hello/>]]>]]>'],
    [FrameType.Eof, ''],
    [FrameType.Data, big.subarray(0, MAX_DATA_BYTES).toString('latin1')],
    [FrameType.Data, big.subarray(MAX_DATA_BYTES, 2 * MAX_DATA_BYTES).toString('latin1')],
    [FrameType.Data, big.subarray(2 * MAX_DATA_BYTES).toString('latin1')],
    [FrameType.Stderr, 'callhome-gateway: bye\n'],
    [FrameType.Exit, '{"code":0}'],
  ];
  return { bytes: Buffer.concat(parts), frames };
};

test('one chunk, byte by byte, and random splits all decode to the same frames', (t) => {
  const { bytes, frames } = stream();
  t.deepEqual(decodeAll([bytes]), frames);
  // Byte by byte over the small frames (the big ones are covered by the random splits).
  const head = bytes.subarray(0, 60);
  t.deepEqual(decodeAll([...head].map((b) => Buffer.from([b]))), decodeAll([head]));
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let round = 0; round < 50; round++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length;) {
      const n = 1 + Math.floor(rand() * (round % 2 ? 9 : 70_000));
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    t.deepEqual(decodeAll(chunks), frames, `round ${round}`);
  }
});

test('the decoder is idle only between frames', (t) => {
  const d = new FrameDecoder(() => {});
  t.true(d.idle);
  const f = encodeFrame(FrameType.Data, Buffer.from('abc'));
  d.push(f.subarray(0, 3));
  t.false(d.idle);
  d.push(f.subarray(3));
  t.true(d.idle);
});

test('unknown types and oversized frames are protocol errors, caught at the header', (t) => {
  const unknown = Buffer.from([0x21, 0, 0, 0, 0]);
  t.throws(() => decodeAll([unknown]), { message: /unknown frame type 0x21/ });
  const header = (type: number, length: number) => {
    const b = Buffer.alloc(HEADER_BYTES);
    b[0] = type;
    b.writeUInt32BE(length, 1);
    return b;
  };
  // Only the header arrives: the refusal cannot wait for (or allocate) the payload.
  t.throws(() => decodeAll([header(FrameType.Data, MAX_DATA_BYTES + 1)]), { message: /at most 65536/ });
  t.throws(() => decodeAll([header(FrameType.Open, MAX_CONTROL_BYTES + 1)]), { message: /at most 4096/ });
  t.throws(() => decodeAll([header(FrameType.Open, 0xffffffff)]), { code: 'GW_ERR_PROTOCOL' } as never);
  t.throws(() => encodeFrame(FrameType.Stderr, 'x'.repeat(MAX_CONTROL_BYTES + 1)), { instanceOf: RangeError });
});

test('requests and replies are parsed strictly, with one-line reasons', (t) => {
  const good = { v: PROTOCOL_VERSION, device: 'edge-1', user: 'alice', access: 'read-only', session: 's1', client: '10.0.0.1:5000', replica: 'gw-b' };
  t.deepEqual(parseRequest(Buffer.from(JSON.stringify(good))), good);
  const bad: [Record<string, unknown> | string, RegExp][] = [
    ['not json', /not JSON/],
    ['[1]', /not a JSON object/],
    [{ ...good, v: 2 }, /protocol version 2/],
    [{ ...good, device: '../etc' }, /no valid device/],
    [{ ...good, user: '' }, /no valid user/],
    [{ ...good, user: 'a\nb' }, /no valid user/],
    [{ ...good, access: 'root' }, /no valid access/],
    [{ ...good, session: undefined }, /no valid session/],
    [{ ...good, replica: 'x'.repeat(300) }, /no valid replica/],
  ];
  for (const [value, re] of bad) {
    const err = t.throws(() => parseRequest(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))), { message: re });
    t.is((err as { code?: string }).code, 'GW_ERR_PROTOCOL');
    t.notRegex(err!.message, /\n/);
  }
  t.deepEqual(parseReply(Buffer.from('{"ok":true,"kind":"held"}')), { ok: true, kind: 'held' });
  t.deepEqual(parseReply(Buffer.from('{"ok":false,"result":"rejected_limit","reason":"too many"}')), { ok: false, result: 'rejected_limit', reason: 'too many' });
  for (const r of ['{"ok":true}', '{"ok":false,"result":"ok","reason":"x"}', '{"ok":false,"result":"denied"}', '{"ok":"yes"}']) {
    t.throws(() => parseReply(Buffer.from(r)), { message: /malformed forwarded session reply/ }, r);
  }
});
