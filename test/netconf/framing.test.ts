import test from 'ava';
import { FrameScanner, FramingError, MAX_CHUNK_SIZE, type FrameSink, type Framing } from '../../src/netconf/framing.js';
import {
  CLIENT_HELLO_11,
  Collector,
  DEVICE_HELLO_11,
  NOTIFICATION,
  REPLY_DATA,
  REPLY_LOCK_ERROR,
  REPLY_OK,
  RPC_COMMIT,
  RPC_GET_CONFIG,
  RPC_LOCK,
  bytewise,
  encode,
  prng,
  randomSplit,
  scan,
  splitAt,
  type ScanResult,
} from './fixtures.js';

const MESSAGES = [
  DEVICE_HELLO_11,
  CLIENT_HELLO_11,
  RPC_GET_CONFIG,
  REPLY_DATA,
  RPC_LOCK,
  REPLY_LOCK_ERROR,
  RPC_COMMIT,
  REPLY_OK,
  NOTIFICATION,
  // Payload that ends in what could be the start of the marker, and one that is empty of XML.
  '<x>]]</x>]',
  ' ',
];

const VARIANTS: { name: string; framing: Framing; chunkSize?: number }[] = [
  { name: 'eom', framing: 'eom' },
  { name: 'chunked, one chunk per message', framing: 'chunked' },
  { name: 'chunked, 100-byte chunks', framing: 'chunked', chunkSize: 100 },
  { name: 'chunked, 7-byte chunks', framing: 'chunked', chunkSize: 7 },
  { name: 'chunked, 1-byte chunks', framing: 'chunked', chunkSize: 1 },
];

function sameAsExpected(r: ScanResult): string | undefined {
  if (r.error) return `error: ${String(r.error)}`;
  if (r.partial !== '') return `left a partial message of ${r.partial.length} bytes`;
  if (r.messages.length !== MESSAGES.length) return `${r.messages.length} messages instead of ${MESSAGES.length}`;
  for (let i = 0; i < MESSAGES.length; i++) if (r.messages[i] !== MESSAGES[i]) return `message ${i} differs`;
  if (r.emptySegments > 0) return 'empty segment handed to the sink';
  return undefined;
}

for (const v of VARIANTS) {
  const stream = encode(v.framing, MESSAGES, v.chunkSize);
  const heldCap = v.framing === 'eom' ? 5 : 0;

  test(`${v.name}: one read gives every message and payload`, (t) => {
    const r = scan(v.framing, [stream]);
    t.is(sameAsExpected(r), undefined);
    t.deepEqual(r.messages, MESSAGES);
  });

  test(`${v.name}: one byte at a time gives the same`, (t) => {
    const r = scan(v.framing, bytewise(stream));
    t.is(sameAsExpected(r), undefined);
    t.true(r.maxHeld <= heldCap);
  });

  if (v.chunkSize !== 1) {
    test(`${v.name}: split at every single byte boundary gives the same`, (t) => {
      const failures: string[] = [];
      let maxHeld = 0;
      for (let k = 1; k < stream.length; k++) {
        const r = scan(v.framing, splitAt(stream, [k]));
        maxHeld = Math.max(maxHeld, r.maxHeld);
        const bad = sameAsExpected(r);
        if (bad) failures.push(`split at ${k}: ${bad}`);
      }
      t.deepEqual(failures.slice(0, 5), []);
      t.true(maxHeld <= heldCap);
    });
  }

  test(`${v.name}: 300 seeded random splittings give the same`, (t) => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const r = scan(v.framing, randomSplit(stream, rand, 1 + Math.floor(rand() * 200)));
      const bad = sameAsExpected(r);
      if (bad) failures.push(`seed ${seed}: ${bad}`);
      if (r.maxHeld > heldCap) failures.push(`seed ${seed}: held ${r.maxHeld} bytes`);
    }
    t.deepEqual(failures.slice(0, 5), []);
  });
}

test('eom: a split marker is recognised, and a false start is released as payload', (t) => {
  const sink = new Collector();
  const s = new FrameScanner('eom', sink, { maxMessageBytes: 100 });
  s.push(Buffer.from('<a>]]>]]'));
  t.is(s.heldBytes, 5);
  t.true(s.inMessage);
  t.is(sink.partial, '<a>');
  s.push(Buffer.from('x'));
  t.is(s.heldBytes, 0);
  t.is(sink.partial, '<a>]]>]]x');
  s.push(Buffer.from(']]>]'));
  t.is(s.heldBytes, 4);
  s.push(Buffer.from(']>'));
  t.deepEqual(sink.messages, ['<a>]]>]]x']);
  t.false(s.inMessage);
  t.is(s.heldBytes, 0);
});

test('eom: overlapping marker starts (]]]>]]> and ]]>]]]>]]>)', (t) => {
  t.deepEqual(scan('eom', [Buffer.from('a]]]>]]>b]]>]]]>]]>]]>]]>')]).messages, ['a]', 'b]]>]', '']);
  t.deepEqual(scan('eom', bytewise(Buffer.from('a]]]>]]>b]]>]]]>]]>]]>]]>'))).messages, ['a]', 'b]]>]', '']);
});

test('eom: payload segments are subarrays of the input, not copies', (t) => {
  const input = Buffer.from('<rpc/>]]>]]><rpc/>');
  const segments: Buffer[] = [];
  const s = new FrameScanner('eom', { data: (b) => segments.push(b), end: () => {} }, { maxMessageBytes: 100 });
  s.push(input);
  t.true(segments.length === 2 && segments.every((b) => b.buffer === input.buffer));
});

test('chunked: data segments are subarrays of the input and need no buffering', (t) => {
  const input = Buffer.from('\n#4\nabcd\n#2\nef\n##\n');
  const segments: Buffer[] = [];
  const s = new FrameScanner('chunked', { data: (b) => segments.push(b), end: () => {} }, { maxMessageBytes: 100 });
  t.is(s.push(input), input.length);
  t.deepEqual(segments.map(String), ['abcd', 'ef']);
  t.true(segments.every((b) => b.buffer === input.buffer));
  t.is(s.heldBytes, 0);
});

test('chunked: the largest chunk-size RFC 6242 allows is accepted', (t) => {
  const s = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 2 ** 33 });
  s.push(Buffer.from(`\n#${MAX_CHUNK_SIZE}\nabc`));
  t.true(s.inMessage);
  t.is(s.failure, undefined);
});

test('inMessage: true from the first framing byte to the end of the message', (t) => {
  const s = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 100 });
  t.false(s.inMessage);
  s.push(Buffer.from('\n'));
  t.true(s.inMessage);
  s.push(Buffer.from('#1\na\n##'));
  t.true(s.inMessage);
  s.push(Buffer.from('\n'));
  t.false(s.inMessage);
});

test('setFraming from end(): the rest of the same read is scanned in the new framing', (t) => {
  const messages: string[] = [];
  let cur = '';
  const sink: FrameSink = {
    data: (b) => (cur += b.toString()),
    end: () => {
      messages.push(cur);
      cur = '';
      if (s.framing === 'eom') s.setFraming('chunked');
    },
  };
  const s = new FrameScanner('eom', sink, { maxMessageBytes: 1000 });
  s.push(Buffer.from(`<hello/>]]>]]>\n#6\n<rpc/>\n##\n\n#3\nabc\n##\n`));
  t.deepEqual(messages, ['<hello/>', '<rpc/>', 'abc']);
});

test('setFraming inside a message is refused with a FramingError', (t) => {
  const s = new FrameScanner('eom', new Collector(), { maxMessageBytes: 100 });
  s.push(Buffer.from('<rpc'));
  t.throws(() => s.setFraming('chunked'), { instanceOf: FramingError });
});

test('pause() from end(): push returns what it consumed, then nothing until resume()', (t) => {
  const sink = new Collector();
  const s: FrameScanner = new FrameScanner('eom', { data: (b) => sink.data(b), end: () => (sink.end(), s.pause()) }, { maxMessageBytes: 100 });
  const input = Buffer.from('<hello/>]]>]]><rpc/>]]>]]>');
  t.is(s.push(input), 14);
  t.is(s.push(input.subarray(14)), 0);
  s.resume();
  t.is(s.push(input.subarray(14)), 12);
  t.deepEqual(sink.messages, ['<hello/>', '<rpc/>']);
});

test('pause() in the middle of a message takes effect at its end', (t) => {
  const sink = new Collector();
  const s: FrameScanner = new FrameScanner('chunked', { data: (b) => (sink.data(b), s.pause()), end: () => sink.end() }, { maxMessageBytes: 100 });
  t.is(s.push(Buffer.from('\n#2\nab')), 6);
  t.is(s.push(Buffer.from('\n##\n\n#1\nc\n##\n')), 4);
  t.deepEqual(sink.messages, ['ab']);
});

// ---- malformed input: FramingError and nothing else, however the bytes are cut ----

const MALFORMED_CHUNKED: [string, string, number?][] = [
  ['chunk-size not ended by LF', '\n#5abcde\n##\n'],
  ['chunk-size ended by CR', '\n#5\rabcde\n##\n'],
  ['CRLF instead of LF', '\r\n#5\r\nabcde\r\n##\r\n'],
  ['leading zero', '\n#05\nabcde\n##\n'],
  ['#0', '\n#0\n\n##\n'],
  ['chunk-size 4294967296 (one over the RFC 6242 maximum)', '\n#4294967296\nabc'],
  ['a 30-digit chunk-size', '\n#123456789012345678901234567890\nabc'],
  ['chunk-size over the configured cap', '\n#101\nabc', 100],
  ['chunks adding up over the configured cap', `\n#60\n${'a'.repeat(60)}\n#41\n${'b'.repeat(41)}\n##\n`, 100],
  ['letters in chunk-size', '\n#abc\nabc\n##\n'],
  ['digit then letter', '\n#1a\na\n##\n'],
  ['negative size', '\n#-1\na\n##\n'],
  ['plus sign', '\n#+1\na\n##\n'],
  ['space before size', '\n# 1\na\n##\n'],
  ['space after size', '\n#1 \na\n##\n'],
  ['no HASH', '\n1\na\n##\n'],
  ['junk between chunks', '\n#3\nabcX\n#3\nabc\n##\n'],
  ['chunk longer than declared', '\n#3\nabcd\n##\n'],
  ['junk between messages', '\n#3\nabc\n##\n \n#3\nabc\n##\n'],
  ['message not starting with LF', '#3\nabc\n##\n'],
  ['XML where a chunk header should be', '<rpc message-id="1"/>]]>]]>'],
  ['end-of-chunks without any chunk', '\n##\n'],
  ['end-of-chunks not ended by LF', '\n#3\nabc\n##x'],
  ['three hashes', '\n#3\nabc\n###\n'],
  ['empty line', '\n\n'],
];

function assertFailsEveryWay(t: import('ava').ExecutionContext, framing: Framing, input: Buffer, max: number): void {
  const ways: [string, Buffer[]][] = [
    ['one read', [input]],
    ['bytewise', [...bytewise(input)]],
  ];
  for (let k = 1; k < input.length; k++) ways.push([`split at ${k}`, splitAt(input, [k])]);
  const wrong: string[] = [];
  for (const [how, pieces] of ways) {
    const r = scan(framing, pieces, max);
    if (!(r.error instanceof FramingError)) wrong.push(`${how}: ${r.error === undefined ? 'no error' : String(r.error)}`);
    else if (r.error.code !== 'GW_ERR_FRAMING') wrong.push(`${how}: code ${r.error.code}`);
  }
  t.deepEqual(wrong.slice(0, 5), []);
}

for (const [name, text, max] of MALFORMED_CHUNKED) {
  test(`chunked, malformed: ${name} → FramingError`, (t) => {
    assertFailsEveryWay(t, 'chunked', Buffer.from(text, 'latin1'), max ?? 1 << 20);
  });
}

test('chunked: the error names what was wrong', (t) => {
  const s = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 1000 });
  const err = t.throws(() => s.push(Buffer.from('\n#05\n')), { instanceOf: FramingError });
  t.regex(err.message, /zero/);
  const s2 = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 1000 });
  t.throws(() => s2.push(Buffer.from('\n#1001\n')), { message: /exceeds 1000/ });
  const s3 = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 2 ** 40 });
  t.throws(() => s3.push(Buffer.from('\n#4294967296\n')), { message: /4294967295/ });
});

test('eom: a message with no marker fails once it exceeds the cap', (t) => {
  assertFailsEveryWay(t, 'eom', Buffer.from('a'.repeat(150)), 100);
  const s = new FrameScanner('eom', new Collector(), { maxMessageBytes: 1000 });
  for (let i = 0; i < 9; i++) s.push(Buffer.alloc(100, 0x61));
  t.throws(() => s.push(Buffer.alloc(200, 0x61)), { instanceOf: FramingError, message: /exceeds 1000/ });
});

test('eom: a payload of exactly the cap passes, one byte more fails, however cut', (t) => {
  const exact = Buffer.from(`${'a'.repeat(95)}]]>]]]]>]]>`); // payload: 95 a's + "]]>]]" = 100 bytes
  const failures: string[] = [];
  for (let k = 1; k < exact.length; k++) {
    const r = scan('eom', splitAt(exact, [k]), 100);
    if (r.error || r.messages.length !== 1 || r.messages[0]!.length !== 100) failures.push(`split at ${k}`);
  }
  t.deepEqual(failures, []);
  assertFailsEveryWay(t, 'eom', Buffer.from(`a${exact.toString()}`), 100);
});

test('after a FramingError the scanner stays failed', (t) => {
  const s = new FrameScanner('chunked', new Collector(), { maxMessageBytes: 100 });
  const first = t.throws(() => s.push(Buffer.from('\n#0\n')), { instanceOf: FramingError });
  t.is(s.failure, first);
  t.throws(() => s.push(Buffer.from('\n#1\na\n##\n')), { is: first });
  t.throws(() => s.setFraming('eom'), { is: first });
});

test('an error thrown by the sink propagates once, then the scanner reports a FramingError', (t) => {
  const boom = new TypeError('sink bug');
  const s = new FrameScanner(
    'eom',
    {
      data: () => {
        throw boom;
      },
      end: () => {},
    },
    { maxMessageBytes: 100 },
  );
  t.throws(() => s.push(Buffer.from('abc]]>]]>')), { is: boom });
  t.throws(() => s.push(Buffer.from('abc]]>]]>')), { instanceOf: FramingError });
});

test('the constructor rejects a nonsensical cap', (t) => {
  t.throws(() => new FrameScanner('eom', new Collector(), { maxMessageBytes: Number.NaN }), { instanceOf: RangeError });
});
