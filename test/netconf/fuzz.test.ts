// Property-based fuzzing of the scanners and the meter (fast-check, fixed seeds so CI is
// reproducible): random bytes and mutated valid streams, cut at random points. Only
// FramingError may escape, held memory stays within its caps, and the streaming scanners
// agree with a whole-buffer reference parser however the input is cut.
import { deepStrictEqual } from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { FrameScanner, FramingError, MAX_CHUNK_SIZE, type Framing } from '../../src/netconf/framing.js';
import { EOM_MARKER } from '../../src/netconf/vocabulary.js';
import { negotiatedFraming, parseHello } from '../../src/netconf/hello.js';
import type { Direction } from '../../src/netconf/direction.js';
import { NetconfMeter } from '../../src/netconf/meter.js';
import {
  CLIENT_HELLO_10,
  CLIENT_HELLO_11,
  DEVICE_HELLO_10,
  DEVICE_HELLO_11,
  NOTIFICATION,
  NS,
  REPLY_DATA,
  REPLY_LOCK_ERROR,
  REPLY_OK,
  RPC_COMMIT,
  RPC_GET_CONFIG,
  RPC_LOCK,
  encode,
  splitAt,
} from './fixtures.js';

// ---- a whole-buffer reference for each framing (deliberately written differently) ----

interface Outcome {
  messages: string[];
  failed: boolean;
}

function referenceEom(buf: Buffer, max: number): Outcome {
  const messages: string[] = [];
  let start = 0;
  for (;;) {
    const j = buf.indexOf(EOM_MARKER, start);
    if (j < 0) {
      // Unfinished message: what cannot be the start of the marker is definitely payload.
      const rest = buf.subarray(start);
      let k = Math.min(5, rest.length);
      while (k > 0 && !rest.subarray(rest.length - k).equals(EOM_MARKER.subarray(0, k))) k--;
      return { messages, failed: rest.length - k > max };
    }
    if (j - start > max) return { messages, failed: true };
    messages.push(buf.toString('latin1', start, j));
    start = j + EOM_MARKER.length;
  }
}

function referenceChunked(buf: Buffer, max: number): Outcome {
  const messages: string[] = [];
  const len = buf.length;
  const fail = { messages, failed: true };
  const unfinished = { messages, failed: false };
  let i = 0;
  while (i < len) {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      if (i >= len) return unfinished;
      if (buf[i] !== 0x0a) return fail;
      if (++i >= len) return unfinished;
      if (buf[i] !== 0x23) return fail;
      if (++i >= len) return unfinished;
      if (buf[i] === 0x23) {
        if (parts.length === 0) return fail;
        if (++i >= len) return unfinished;
        if (buf[i] !== 0x0a) return fail;
        i++;
        messages.push(Buffer.concat(parts).toString('latin1'));
        break;
      }
      let j = i;
      while (j < len && buf[j]! >= 0x30 && buf[j]! <= 0x39) j++;
      const digits = buf.toString('latin1', i, j);
      if (digits === '') return j >= len ? unfinished : fail;
      if (digits.startsWith('0')) return fail;
      const size = Number(digits);
      if (size > MAX_CHUNK_SIZE || total + size > max) return fail;
      if (j >= len) return unfinished;
      if (buf[j] !== 0x0a) return fail;
      i = j + 1;
      if (len - i < size) return unfinished;
      parts.push(buf.subarray(i, i + size));
      total += size;
      i += size;
    }
  }
  return unfinished;
}

function streamed(framing: Framing, pieces: Buffer[], max: number): Outcome {
  const messages: string[] = [];
  let current: Buffer[] = [];
  const scanner = new FrameScanner(
    framing,
    {
      data: (b) => current.push(Buffer.from(b)),
      end: () => {
        messages.push(Buffer.concat(current).toString('latin1'));
        current = [];
      },
    },
    { maxMessageBytes: max },
  );
  for (const piece of pieces) {
    try {
      scanner.push(piece);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err; // anything else fails the property
      return { messages, failed: true };
    }
    if (scanner.heldBytes > 5) throw new Error(`scanner held ${scanner.heldBytes} bytes`);
  }
  return { messages, failed: false };
}

// ---- arbitraries ----

const framingByte = fc.constantFrom(0x0a, 0x0d, 0x23, 0x30, 0x31, 0x32, 0x35, 0x39, 0x5d, 0x3e, 0x3c, 0x20, 0x61, 0x00, 0xff);
const anyByte = fc.integer({ min: 0, max: 255 });
// Random fragments of both framings, so that random input does complete messages sometimes.
const fragment = fc.oneof(
  fc.constantFrom(
    '\n',
    '#',
    '\n#',
    '\n##\n',
    '\n#1\n',
    '\n#3\n',
    '\n#12\n',
    '\n#4294967295\n',
    '\n#4294967296',
    '99999',
    ']]>]]>',
    ']]>',
    ']]',
    ']',
    '>',
    '0',
    '7',
    'abc',
    '<rpc/>',
  ),
  framingByte.map((b) => String.fromCharCode(b)),
);
const randomBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.array(fc.oneof(framingByte, framingByte, anyByte), { maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.array(fragment, { maxLength: 60 }).map((f) => Buffer.from(f.join(''), 'latin1')),
);

const messageText = fc.oneof(
  fc.constantFrom(RPC_COMMIT, REPLY_OK, RPC_LOCK, NOTIFICATION, '', ']', ']]>]]', 'a]]>]]>b'),
  fc.string({ maxLength: 60 }),
  fc.array(framingByte, { maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')),
);

interface Mutation {
  op: 'flip' | 'insert' | 'delete' | 'duplicate';
  pos: number;
  byte: number;
  span: number;
}

const mutations = fc.array(
  fc.record({
    op: fc.constantFrom('flip', 'insert', 'delete', 'duplicate'),
    pos: fc.nat(),
    byte: fc.oneof(framingByte, anyByte),
    span: fc.integer({ min: 1, max: 12 }),
  }),
  { maxLength: 4 },
);

function mutate(input: Buffer, muts: readonly Mutation[]): Buffer {
  let buf = input;
  for (const m of muts) {
    const pos = m.pos % (buf.length + 1);
    if (m.op === 'flip' && pos < buf.length) {
      buf = Buffer.from(buf);
      buf[pos] = m.byte;
    } else if (m.op === 'insert') {
      buf = Buffer.concat([buf.subarray(0, pos), Buffer.from([m.byte]), buf.subarray(pos)]);
    } else if (m.op === 'delete') {
      buf = Buffer.concat([buf.subarray(0, pos), buf.subarray(pos + m.span)]);
    } else if (m.op === 'duplicate') {
      buf = Buffer.concat([buf.subarray(0, pos + m.span), buf.subarray(pos)]);
    }
  }
  return buf;
}

const cuts = fc.array(fc.nat({ max: 1 << 16 }), { maxLength: 16 });
// Tiny caps, a roomy one, and one above the RFC's chunk-size limit (so that limit is reached).
const cap = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(1 << 20), fc.constant(2 ** 40));

function validStream(framing: Framing) {
  return fc
    .tuple(fc.array(messageText, { maxLength: 6 }), fc.integer({ min: 1, max: 64 }), mutations)
    .map(([msgs, chunkSize, muts]) => mutate(encode(framing, msgs, chunkSize), muts));
}

const RUNS = { scannerRandom: 20_000, scannerMutated: 20_000, meterSessions: 15_000, meterRandom: 10_000 };

for (const framing of ['eom', 'chunked'] as const) {
  const reference = framing === 'eom' ? referenceEom : referenceChunked;
  // Minimum shares of runs that complete a message / fail, so the inputs stay interesting.
  for (const [kind, inputs, runs, minMessages, minFailed] of [
    ['random bytes', randomBytes, RUNS.scannerRandom, 0, 0.02],
    ['mutated valid streams', validStream(framing), RUNS.scannerMutated, 0.25, 0.05],
  ] as const) {
    test(`fuzz ${framing} scanner, ${kind}: only FramingError, held ≤ 5, same result however cut (${runs} runs)`, (t) => {
      let executed = 0;
      const reach = { withMessages: 0, failed: 0 };
      fc.assert(
        fc.property(inputs, cuts, cap, (input, cutPoints, max) => {
          executed++;
          const want = reference(input, max);
          if (want.messages.length > 0) reach.withMessages++;
          if (want.failed) reach.failed++;
          deepStrictEqual(
            streamed(
              framing,
              splitAt(
                input,
                cutPoints.map((c) => c % (input.length + 1)),
              ),
              max,
            ),
            want,
          );
        }),
        { numRuns: runs, seed: framing === 'eom' ? 6242 : 4742, endOnFailure: true },
      );
      t.is(executed, runs);
      t.log(reach);
      t.true(reach.withMessages >= runs * minMessages, 'too few inputs completed a message');
      t.true(reach.failed >= runs * minFailed, 'too few inputs were rejected');
    });
  }
}

// ---- the meter: whole sessions, mutated and interleaved ----

const DIRECTIONS: Direction[] = ['to_device', 'to_client'];
const id = fc.constantFrom('1', '2', '3', '101', '102', '103', "q'", 'x"y&amp;');
const operation = fc.constantFrom('get', 'get-config', 'edit-config', 'commit', 'lock', 'nc:validate');
// One rpc and what comes back for it: usually its reply (ok, error or data), sometimes a
// notification or a reply to something else.
const exchange = fc.record({ id, operation, answer: fc.constantFrom('ok', 'error', 'data', 'notification', 'stray') });
const rpcText = (e: { id: string; operation: string }) => `<rpc message-id="${e.id}" xmlns="${NS}"><${e.operation}/></rpc>`;
function answerText(e: { id: string; answer: string }): string {
  switch (e.answer) {
    case 'ok':
      return `<rpc-reply message-id="${e.id}" xmlns="${NS}"><ok/></rpc-reply>`;
    case 'error':
      return `<rpc-reply message-id='${e.id}'><rpc-error><error-tag>in-use</error-tag></rpc-error></rpc-reply>`;
    case 'data':
      return REPLY_DATA.replace('message-id="101"', `message-id="${e.id}"`);
    case 'notification':
      return NOTIFICATION;
    default:
      return REPLY_LOCK_ERROR;
  }
}
// Mostly what real peers send, sometimes not a hello at all.
const deviceHello = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(DEVICE_HELLO_11, DEVICE_HELLO_10, `<hello xmlns="${NS}"><capabilities/></hello>`) },
  { weight: 1, arbitrary: fc.constant(RPC_COMMIT) },
);
const clientHello = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(CLIENT_HELLO_11, CLIENT_HELLO_10, `<hello><capabilities/></hello>`) },
  { weight: 1, arbitrary: fc.constant(REPLY_OK) },
);

// Mostly roomy caps (so sessions get as far as RPC matching), sometimes tight ones.
const roomyOrTight = (roomy: number, ...tight: number[]) => fc.oneof({ weight: 4, arbitrary: fc.constant(roomy) }, { weight: 1, arbitrary: fc.constantFrom(...tight) });
const meterOptions = fc.record({
  maxMessageBytes: roomyOrTight(1 << 16, 100, 300),
  maxHelloBytes: roomyOrTight(1 << 16, 200, 1024, 2048),
  maxPrefixBytes: roomyOrTight(4096, 1, 16, 64),
  maxOutstandingRpcs: roomyOrTight(1024, 1, 2, 8),
});
const fewMutations = fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: mutations });

interface Script {
  streams: Record<Direction, Buffer>;
  cuts: Record<Direction, number[]>;
  /** Which side goes next, cycled; empty means every rpc is sent before any answer. */
  order: boolean[];
}

function framingOf(dh: string, ch: string): Framing {
  try {
    return negotiatedFraming(parseHello(dh).capabilities, parseHello(ch).capabilities);
  } catch {
    return 'eom';
  }
}

// Mutations hit the whole stream, or (more often) only what follows the hello, so that many
// sessions get past negotiation and into rpc matching.
const mutationSite = fc.oneof({ weight: 1, arbitrary: fc.constant('anywhere') }, { weight: 2, arbitrary: fc.constant('after-hello') });

function mutateAfter(hello: Buffer, rest: Buffer, muts: readonly Mutation[], site: string): Buffer {
  return site === 'anywhere' ? mutate(Buffer.concat([hello, rest]), muts) : Buffer.concat([hello, mutate(rest, muts)]);
}

const session = fc
  .record({
    dh: deviceHello,
    ch: clientHello,
    exchanges: fc.array(exchange, { maxLength: 6 }),
    extra: fc.array(fc.constantFrom(RPC_GET_CONFIG, RPC_LOCK), { maxLength: 2 }),
    wrongFraming: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    chunkSize: fc.integer({ min: 1, max: 80 }),
    mutD: fewMutations,
    mutC: fewMutations,
    siteD: mutationSite,
    siteC: mutationSite,
    cutD: cuts,
    cutC: cuts,
    order: fc.oneof(fc.constant<boolean[]>([]), fc.array(fc.boolean(), { maxLength: 40 })),
  })
  .map(({ dh, ch, exchanges, extra, wrongFraming, chunkSize, mutD, mutC, siteD, siteC, cutD, cutC, order }): Script => {
    let framing = framingOf(dh, ch);
    if (wrongFraming) framing = framing === 'eom' ? 'chunked' : 'eom';
    const rpcs = [...exchanges.map(rpcText), ...extra];
    const answers = exchanges.map(answerText);
    return {
      streams: {
        to_device: mutateAfter(encode('eom', [ch]), encode(framing, rpcs, chunkSize), mutD, siteD),
        to_client: mutateAfter(encode('eom', [dh]), encode(framing, answers, chunkSize), mutC, siteC),
      },
      cuts: { to_device: cutD, to_client: cutC },
      order,
    };
  });

const randomSession = fc
  .record({ d: randomBytes, c: randomBytes, helloFirst: fc.boolean(), cutD: cuts, cutC: cuts, order: fc.array(fc.boolean(), { maxLength: 40 }) })
  .map(({ d, c, helloFirst, cutD, cutC, order }): Script => ({
    streams: {
      to_device: helloFirst ? Buffer.concat([encode('eom', [CLIENT_HELLO_11]), d]) : d,
      to_client: helloFirst ? Buffer.concat([encode('eom', [DEVICE_HELLO_11]), c]) : c,
    },
    cuts: { to_device: cutD, to_client: cutC },
    order,
  }));

interface Reach {
  negotiated: number;
  messages: number;
  rpcs: number;
  failures: number;
}

function runMeter(script: Script, opts: { maxMessageBytes: number; maxHelloBytes: number; maxPrefixBytes: number; maxOutstandingRpcs: number }, reach: Reach): void {
  const counted = { to_device: 0, to_client: 0 };
  let now = 0;
  let negotiated = false;
  const meter = new NetconfMeter(
    {
      bytes: (d, n) => (counted[d] += n),
      framing: () => (negotiated = true),
      message: () => reach.messages++,
      rpc: (_op, _id, seconds) => {
        reach.rpcs++;
        if (!(seconds >= 0)) throw new Error(`rpc seconds ${seconds}`);
      },
    },
    { ...opts, now: () => now++ },
  );
  const pieces = {
    to_device: splitAt(
      script.streams.to_device,
      script.cuts.to_device.map((c) => c % (script.streams.to_device.length + 1)),
    ),
    to_client: splitAt(
      script.streams.to_client,
      script.cuts.to_client.map((c) => c % (script.streams.to_client.length + 1)),
    ),
  };
  let step = 0;
  while (pieces.to_device.length > 0 || pieces.to_client.length > 0) {
    const prefer: Direction = script.order.length === 0 || script.order[step++ % script.order.length] ? 'to_device' : 'to_client';
    const direction = pieces[prefer].length > 0 ? prefer : prefer === 'to_device' ? 'to_client' : 'to_device';
    const piece = pieces[direction].shift()!;
    try {
      meter.observe(direction, Buffer.from(piece));
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      reach.failures++;
    }
    for (const d of DIRECTIONS) {
      const held = meter.held(d);
      if (held.helloBytes > opts.maxHelloBytes || held.pendingBytes > opts.maxHelloBytes) throw new Error(`${d} hello/pending over cap`);
      if (held.prefixBytes > opts.maxPrefixBytes) throw new Error(`${d} prefix over cap`);
      if (held.scannerBytes > 5) throw new Error(`${d} scanner held ${held.scannerBytes}`);
    }
    if (meter.outstandingRpcs > opts.maxOutstandingRpcs) throw new Error('outstanding rpcs over cap');
  }
  deepStrictEqual(counted, { to_device: script.streams.to_device.length, to_client: script.streams.to_client.length });
  if (negotiated) reach.negotiated++;
}

// The minimum share of runs that must get as far as negotiation and rpc matching, so that a
// generator that only ever produces garbage (or a meter that silently does nothing) is noticed.
for (const [kind, scripts, runs, seed, minNegotiated, minRpcs] of [
  ['mutated sessions', session, RUNS.meterSessions, 8071, 0.3, 0.1],
  ['random bytes, with or without hellos first', randomSession, RUNS.meterRandom, 6241, 0.2, 0],
] as const) {
  test(`fuzz meter, ${kind}: only FramingError, every byte counted, caps hold (${runs} runs)`, (t) => {
    let executed = 0;
    const reach: Reach = { negotiated: 0, messages: 0, rpcs: 0, failures: 0 };
    fc.assert(
      fc.property(scripts, meterOptions, (script, opts) => {
        executed++;
        runMeter(script, opts, reach);
      }),
      { numRuns: runs, seed, endOnFailure: true },
    );
    t.is(executed, runs);
    t.log(reach);
    t.true(reach.negotiated >= runs * minNegotiated, 'too few runs negotiated a framing');
    t.true(reach.rpcs >= runs * minRpcs, 'too few rpcs were matched');
  });
}

test('fuzz total is at least 100,000 generated inputs', (t) => {
  const total = 2 * (RUNS.scannerRandom + RUNS.scannerMutated) + RUNS.meterSessions + RUNS.meterRandom;
  t.true(total >= 100_000, `${total}`);
});
