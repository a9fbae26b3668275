import test from 'ava';
import { FramingError, type Framing } from '../../src/netconf/framing.js';
import { readMessageHead } from '../../src/netconf/vocabulary.js';
import type { Direction } from '../../src/netconf/direction.js';
import { NetconfMeter, type MeterEvents, type MeterOptions } from '../../src/netconf/meter.js';
import {
  CLIENT_HELLO_10,
  CLIENT_HELLO_11,
  DEVICE_HELLO_10,
  DEVICE_HELLO_11,
  DEVICE_HELLO_11_CAPS,
  NOTIFICATION,
  NS,
  REPLY_DATA,
  REPLY_LOCK_ERROR,
  REPLY_OK,
  RPC_COMMIT,
  RPC_GET_CONFIG,
  RPC_LOCK,
  encode,
  prng,
  randomSplit,
} from './fixtures.js';

interface Log {
  messages: Record<Direction, number[]>;
  bytes: Record<Direction, number>;
  hellos: [Direction, string[], string | undefined][];
  framings: Framing[];
  rpcs: { operation: string; messageId: string | undefined; seconds: number; result: string }[];
}

function recorder(): { log: Log; events: MeterEvents } {
  const log: Log = {
    messages: { to_device: [], to_client: [] },
    bytes: { to_device: 0, to_client: 0 },
    hellos: [],
    framings: [],
    rpcs: [],
  };
  const events: MeterEvents = {
    message: (d, n) => log.messages[d].push(n),
    bytes: (d, n) => (log.bytes[d] += n),
    hello: (d, caps, sid) => log.hellos.push([d, caps, sid]),
    framing: (f) => log.framings.push(f),
    rpc: (operation, messageId, seconds, result) => log.rpcs.push({ operation, messageId, seconds, result }),
  };
  return { log, events };
}

/** One step of a session: bytes passing in one direction at one moment (ms). */
interface Step {
  direction: Direction;
  bytes: Buffer;
  at: number;
}

/**
 * A realistic session: the device greets first, the client answers with its hello and an
 * rpc in the same write, replies come back out of order with a notification in between.
 */
function session(framing: Framing, chunkSize?: number, clientFirst = false): Step[] {
  const dHello = framing === 'chunked' ? DEVICE_HELLO_11 : DEVICE_HELLO_10;
  const cHello = framing === 'chunked' ? CLIENT_HELLO_11 : CLIENT_HELLO_10;
  const f = (msgs: string[]) => encode(framing, msgs, chunkSize);
  const hello = (h: string) => encode('eom', [h]);
  const steps: Step[] = [
    { direction: 'to_client', bytes: hello(dHello), at: 0 },
    { direction: 'to_device', bytes: Buffer.concat([hello(cHello), f([RPC_GET_CONFIG])]), at: 1000 },
    { direction: 'to_device', bytes: f([RPC_LOCK, RPC_COMMIT]), at: 1100 },
    { direction: 'to_client', bytes: f([REPLY_LOCK_ERROR, NOTIFICATION]), at: 1150 },
    { direction: 'to_client', bytes: f([REPLY_DATA]), at: 1250 },
    { direction: 'to_client', bytes: f([REPLY_OK]), at: 1600 },
  ];
  if (clientFirst)
    [steps[0], steps[1]] = [
      { ...steps[1]!, at: 0 },
      { ...steps[0]!, at: 1000 },
    ];
  return steps;
}

const EXPECTED_RPCS = [
  { operation: 'lock', messageId: '102', seconds: 0.05, result: 'lock-denied' },
  { operation: 'get-config', messageId: '101', seconds: 0.25, result: 'ok' },
  { operation: 'commit', messageId: '103', seconds: 0.5, result: 'ok' },
];

const payload = (s: string) => Buffer.byteLength(s);

function run(steps: Step[], cut: (b: Buffer) => Buffer[], opts: Partial<MeterOptions> = {}): { log: Log; meter: NetconfMeter } {
  const { log, events } = recorder();
  let now = 0;
  const meter = new NetconfMeter(events, { maxMessageBytes: 1 << 20, maxHelloBytes: 64 << 10, now: () => now, ...opts });
  for (const step of steps) {
    now = step.at;
    for (const piece of cut(step.bytes)) {
      const read = Buffer.from(piece);
      meter.observe(step.direction, read);
      read.fill(0x3c); // the meter must not keep references to a read it has returned from
    }
  }
  return { log, meter };
}

function summary(log: Log): unknown {
  return { ...log, rpcs: log.rpcs.map((r) => ({ ...r, seconds: Math.round(r.seconds * 1e6) / 1e6 })) };
}

for (const framing of ['eom', 'chunked'] as const) {
  const dHello = framing === 'chunked' ? DEVICE_HELLO_11 : DEVICE_HELLO_10;
  const cHello = framing === 'chunked' ? CLIENT_HELLO_11 : CLIENT_HELLO_10;

  test(`${framing}: messages, bytes, hellos, framing and rpc latency of a whole session`, (t) => {
    const steps = session(framing, 300);
    const { log, meter } = run(steps, (b) => [b]);
    t.deepEqual(log.framings, [framing]);
    t.is(meter.framing, framing);
    t.deepEqual(
      log.hellos.map(([d, caps, sid]) => [d, caps.length, sid]),
      [
        ['to_client', framing === 'chunked' ? DEVICE_HELLO_11_CAPS.length : DEVICE_HELLO_11_CAPS.length - 1, '4'],
        ['to_device', framing === 'chunked' ? 4 : 3, undefined],
      ],
    );
    t.deepEqual(log.messages.to_device, [cHello, RPC_GET_CONFIG, RPC_LOCK, RPC_COMMIT].map(payload));
    t.deepEqual(log.messages.to_client, [dHello, REPLY_LOCK_ERROR, NOTIFICATION, REPLY_DATA, REPLY_OK].map(payload));
    for (const d of ['to_device', 'to_client'] as const) {
      const wire = steps.filter((s) => s.direction === d).reduce((n, s) => n + s.bytes.length, 0);
      t.is(log.bytes[d], wire, `${d} bytes are wire bytes`);
    }
    t.deepEqual(summary(log), summary({ ...log, rpcs: EXPECTED_RPCS }));
    t.is(meter.outstandingRpcs, 0);
  });

  test(`${framing}: the client's hello and rpc arriving before the device's hello are held, then read`, (t) => {
    const { log, meter } = run(session(framing, undefined, true), (b) => [b]);
    t.deepEqual(log.framings, [framing]);
    t.is(log.messages.to_device.length, 4);
    // The held get-config is timed from its arrival (t=0), not from the device's hello (t=1s).
    t.deepEqual(summary(log), summary({ ...log, rpcs: [EXPECTED_RPCS[0]!, { ...EXPECTED_RPCS[1]!, seconds: 1.25 }, EXPECTED_RPCS[2]!] }));
    t.is(meter.held('to_device').pendingBytes, 0);
  });

  const reference = summary(run(session(framing, 50), (b) => [b]).log);

  test(`${framing}: the meter sees the same at every single split point of every write`, (t) => {
    const steps = session(framing, 50);
    const failures: number[] = [];
    let offset = 0;
    for (let s = 0; s < steps.length; s++) {
      const len = steps[s]!.bytes.length;
      for (let k = 1; k < len; k++) {
        const cutSteps = steps.map((st, i) => ({ ...st, cut: i === s ? k : -1 }));
        const { log } = run(cutSteps, (b) => {
          const step = cutSteps.find((c) => c.bytes === b)!;
          return step.cut > 0 ? [b.subarray(0, step.cut), b.subarray(step.cut)] : [b];
        });
        if (JSON.stringify(summary(log)) !== JSON.stringify(reference)) failures.push(offset + k);
      }
      offset += len;
    }
    t.deepEqual(failures.slice(0, 5), []);
  });

  test(`${framing}: one byte at a time, and seeded random splits, give the same`, (t) => {
    const steps = session(framing, 50);
    const bytewise = run(steps, (b) => [...b].map((_, i) => b.subarray(i, i + 1)));
    t.deepEqual(summary(bytewise.log), reference);
    for (let seed = 1; seed <= 100; seed++) {
      const rand = prng(seed);
      const { log, meter } = run(steps, (b) => randomSplit(b, rand, 1 + Math.floor(rand() * 300)));
      t.deepEqual(summary(log), reference, `seed ${seed}`);
      t.is(meter.held('to_client').scannerBytes + meter.held('to_device').scannerBytes, 0);
    }
  });
}

test('framing negotiation: 1.0 + 1.1 → eom, 1.1 + 1.1 → chunked, 1.1 + 1.0 → eom', (t) => {
  const cases: [string, string, Framing][] = [
    [DEVICE_HELLO_10, CLIENT_HELLO_11, 'eom'],
    [DEVICE_HELLO_11, CLIENT_HELLO_11, 'chunked'],
    [DEVICE_HELLO_11, CLIENT_HELLO_10, 'eom'],
  ];
  for (const [d, c, want] of cases) {
    const { log, events } = recorder();
    const meter = new NetconfMeter(events, { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16 });
    meter.observe('to_client', encode('eom', [d]));
    t.is(meter.framing, undefined);
    t.deepEqual(log.framings, []);
    meter.observe('to_device', encode('eom', [c]));
    t.deepEqual(log.framings, [want]);
    // What follows is read in the negotiated framing.
    meter.observe('to_device', encode(want, [RPC_COMMIT]));
    meter.observe('to_client', encode(want, [REPLY_OK]));
    t.deepEqual([log.messages.to_device.length, log.messages.to_client.length, log.rpcs.length], [2, 2, 1]);
    if (want === 'chunked') {
      t.throws(() => meter.observe('to_device', encode('eom', [RPC_COMMIT])), { instanceOf: FramingError });
    } else {
      meter.observe('to_device', encode('chunked', [RPC_COMMIT]));
      t.is(log.messages.to_device.length, 2, 'chunked bytes are not a complete eom message');
    }
  }
});

function helloed(framing: Framing, opts: Partial<MeterOptions> = {}) {
  const { log, events } = recorder();
  let now = 0;
  const clock = { set: (ms: number) => (now = ms) };
  const meter = new NetconfMeter(events, { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16, now: () => now, ...opts });
  const hellos = framing === 'chunked' ? [DEVICE_HELLO_11, CLIENT_HELLO_11] : [DEVICE_HELLO_10, CLIENT_HELLO_10];
  meter.observe('to_client', encode('eom', [hellos[0]!]));
  meter.observe('to_device', encode('eom', [hellos[1]!]));
  const send = (d: Direction, ...msgs: string[]) => meter.observe(d, encode(framing, msgs));
  return { log, meter, clock, send };
}

test('rpc latency comes from the injected clock, matched by message-id', (t) => {
  const { log, clock, send } = helloed('chunked');
  clock.set(5000);
  send('to_device', `<rpc message-id="a1" xmlns="${NS}"><get/></rpc>`);
  clock.set(5100);
  send('to_device', `<rpc xmlns="${NS}" message-id='a2'><edit-config><target><running/></target><config/></edit-config></rpc>`);
  clock.set(7100);
  send('to_client', `<rpc-reply xmlns="${NS}" message-id='a2'><ok/></rpc-reply>`);
  clock.set(8000);
  send('to_client', `<rpc-reply message-id="a1" xmlns="${NS}"><data/></rpc-reply>`);
  t.deepEqual(log.rpcs, [
    { operation: 'edit-config', messageId: 'a2', seconds: 2, result: 'ok' },
    { operation: 'get', messageId: 'a1', seconds: 3, result: 'ok' },
  ]);
});

test('rpc-error: the error-tag is the result; a tag beyond the prefix gives "rpc-error"', (t) => {
  const { log, send } = helloed('eom', { maxPrefixBytes: 200 });
  send('to_device', RPC_LOCK);
  send('to_client', REPLY_LOCK_ERROR);
  send('to_device', `<rpc message-id="9" xmlns="${NS}"><commit/></rpc>`);
  send(
    'to_client',
    `<rpc-reply message-id="9" xmlns="${NS}"><rpc-error><error-type>application</error-type>` +
      `<error-message>${'x'.repeat(300)}</error-message><error-tag>operation-failed</error-tag></rpc-error></rpc-reply>`,
  );
  t.deepEqual(
    log.rpcs.map((r) => [r.operation, r.messageId, r.result]),
    [
      ['lock', '102', 'lock-denied'],
      ['commit', '9', 'rpc-error'],
    ],
  );
});

test('notifications are counted as messages but never match an rpc', (t) => {
  const { log, send, meter } = helloed('chunked');
  send('to_device', `<rpc message-id="1" xmlns="${NS}"><create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"/></rpc>`);
  send('to_client', NOTIFICATION, NOTIFICATION);
  t.deepEqual(log.rpcs, []);
  t.is(meter.outstandingRpcs, 1);
  send('to_client', `<rpc-reply message-id="1" xmlns="${NS}"><ok/></rpc-reply>`, NOTIFICATION);
  t.deepEqual(
    log.rpcs.map((r) => r.operation),
    ['create-subscription'],
  );
  t.is(log.messages.to_client.length, 1 + 4);
});

test('replies without a matching rpc, and rpcs without a message-id, are only counted', (t) => {
  const { log, send, meter } = helloed('eom');
  send('to_device', `<rpc xmlns="${NS}"><get/></rpc>`);
  send('to_client', `<rpc-reply message-id="77" xmlns="${NS}"><ok/></rpc-reply>`);
  send('to_client', `<rpc-reply xmlns="${NS}"><rpc-error><error-tag>missing-attribute</error-tag></rpc-error></rpc-reply>`);
  t.deepEqual(log.rpcs, []);
  t.is(meter.outstandingRpcs, 0);
  t.is(log.messages.to_client.length, 3);
});

test('outstanding rpcs are capped; the oldest is forgotten', (t) => {
  const { log, send, meter } = helloed('chunked', { maxOutstandingRpcs: 2 });
  for (const id of ['1', '2', '3']) send('to_device', `<rpc message-id="${id}" xmlns="${NS}"><get/></rpc>`);
  t.is(meter.outstandingRpcs, 2);
  for (const id of ['1', '2', '3']) send('to_client', `<rpc-reply message-id="${id}" xmlns="${NS}"><ok/></rpc-reply>`);
  t.deepEqual(
    log.rpcs.map((r) => r.messageId),
    ['2', '3'],
  );
});

test('readMessageHead: prefixes, quoting, attribute order, truncation', (t) => {
  t.deepEqual(readMessageHead(RPC_LOCK), { root: 'rpc', messageId: '102', operation: 'lock' });
  t.deepEqual(readMessageHead(RPC_GET_CONFIG), { root: 'rpc', messageId: '101', operation: 'get-config' });
  t.deepEqual(readMessageHead(`<x:rpc xmlns:x="${NS}" x:message-id="5"><x:kill-session/></x:rpc>`), {
    root: 'rpc',
    messageId: '5',
    operation: 'kill-session',
  });
  t.deepEqual(readMessageHead('<rpc message-id="1"><!-- c --><?pi?>\n <get-con'), { root: 'rpc', messageId: '1' });
  t.deepEqual(readMessageHead('<rpc message-id="1&amp;2"'), undefined);
  t.deepEqual(readMessageHead(REPLY_LOCK_ERROR), { root: 'rpc-reply', messageId: '102', result: 'lock-denied' });
  t.deepEqual(readMessageHead(REPLY_DATA), { root: 'rpc-reply', messageId: '101', result: 'ok' });
  t.deepEqual(readMessageHead(`<rpc-reply message-id="3"/>`), { root: 'rpc-reply', messageId: '3', result: 'ok' });
  t.deepEqual(readMessageHead(`<rpc-reply message-id="3"><rpc-error><error-tag/></rpc-error></rpc-reply>`), {
    root: 'rpc-reply',
    messageId: '3',
    result: 'rpc-error',
  });
  t.deepEqual(readMessageHead(NOTIFICATION), { root: 'notification' });
  t.is(readMessageHead('not xml at all'), undefined);
  t.is(readMessageHead('< broken'), undefined);
});

test('an oversized hello is a FramingError, and that direction stays failed', (t) => {
  const { log, events } = recorder();
  const meter = new NetconfMeter(events, { maxMessageBytes: 1 << 20, maxHelloBytes: 1000 });
  const big = encode('eom', [DEVICE_HELLO_11]); // ~1.5 KB
  meter.observe('to_client', big.subarray(0, 600));
  t.is(meter.held('to_client').helloBytes, 600);
  const first = t.throws(() => meter.observe('to_client', big.subarray(600, 1200)), {
    instanceOf: FramingError,
    message: /to_client: hello exceeds 1000/,
  });
  t.is(first.code, 'GW_ERR_FRAMING');
  t.throws(() => meter.observe('to_client', big.subarray(1200)), { is: first });
  t.is(log.bytes.to_client, big.length, 'bytes are still counted');
  t.is(meter.held('to_client').helloBytes, 0);
  // The other direction is unaffected.
  meter.observe('to_device', encode('eom', [CLIENT_HELLO_11]));
  t.is(log.hellos.length, 1);
});

test('a first message that is not a hello fails with GW_ERR_NOT_NETCONF', (t) => {
  const meter = new NetconfMeter({}, { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16 });
  const err = t.throws(() => meter.observe('to_device', encode('eom', [RPC_COMMIT])), { instanceOf: FramingError });
  t.is(err.code, 'GW_ERR_NOT_NETCONF');
});

test('a hello without its end marker fails once it passes maxHelloBytes', (t) => {
  const meter = new NetconfMeter({}, { maxMessageBytes: 1 << 20, maxHelloBytes: 4096 });
  const chunk = Buffer.from(`<hello xmlns="${NS}"><capabilities>${'<capability>urn:x</capability>'.repeat(10)}`);
  t.throws(
    () => {
      for (let i = 0; i < 100; i++) {
        meter.observe('to_client', chunk);
        t.true(meter.held('to_client').helloBytes <= 4096);
      }
    },
    { instanceOf: FramingError },
  );
});

test('bytes held while the other hello is awaited are capped by maxHelloBytes', (t) => {
  const meter = new NetconfMeter({}, { maxMessageBytes: 1 << 20, maxHelloBytes: 2048 });
  meter.observe('to_device', encode('eom', [CLIENT_HELLO_11]));
  meter.observe('to_device', Buffer.alloc(2000, 0x20));
  t.is(meter.held('to_device').pendingBytes, 2000);
  t.throws(() => meter.observe('to_device', Buffer.alloc(100, 0x20)), { instanceOf: FramingError, message: /before the other side's hello/ });
});

test('an error in the held bytes surfaces when the other hello arrives, naming its direction', (t) => {
  const { log, events } = recorder();
  const meter = new NetconfMeter(events, { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16 });
  meter.observe('to_device', Buffer.concat([encode('eom', [CLIENT_HELLO_11]), Buffer.from('\n#0\n')]));
  t.throws(() => meter.observe('to_client', encode('eom', [DEVICE_HELLO_11])), { instanceOf: FramingError, message: /^to_device: / });
  t.deepEqual(log.framings, ['chunked']);
  // The device side is fine and goes on.
  meter.observe('to_client', encode('chunked', [NOTIFICATION]));
  t.is(log.messages.to_client.length, 2);
  t.throws(() => meter.observe('to_device', encode('chunked', [RPC_COMMIT])), { instanceOf: FramingError });
});

test('messages over maxMessageBytes are a FramingError in either framing', (t) => {
  for (const framing of ['eom', 'chunked'] as const) {
    const { send } = helloed(framing, { maxMessageBytes: 10_000 });
    send('to_client', `<rpc-reply message-id="1">${'x'.repeat(9000)}</rpc-reply>`);
    t.throws(() => send('to_client', `<rpc-reply message-id="1">${'x'.repeat(10_000)}</rpc-reply>`), {
      instanceOf: FramingError,
    });
  }
});

test('an error thrown by an event handler propagates; that direction then reports a FramingError', (t) => {
  const boom = new Error('handler bug');
  const meter = new NetconfMeter(
    {
      hello: () => {
        throw boom;
      },
    },
    { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16 },
  );
  t.throws(() => meter.observe('to_client', encode('eom', [DEVICE_HELLO_11])), { is: boom });
  t.throws(() => meter.observe('to_client', encode('eom', [REPLY_OK])), { instanceOf: FramingError });
});
