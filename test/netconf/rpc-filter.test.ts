import test from 'ava';
import type { Framing } from '../../src/netconf/framing.js';
import { readMessageHead } from '../../src/netconf/vocabulary.js';
import { accessDeniedReply, readOnlyAllows, readRpcHead } from '../../src/netconf/read-only.js';
import { RpcFilter, type Denial } from '../../src/netconf/rpc-filter.js';
import {
  CLIENT_HELLO_10,
  CLIENT_HELLO_11,
  DEVICE_HELLO_10,
  DEVICE_HELLO_11,
  NOTIFICATION,
  NS,
  REPLY_DATA,
  RPC_COMMIT,
  RPC_GET_CONFIG,
  RPC_LOCK,
  bytewise,
  encode,
  eomEncode,
  prng,
  randomSplit,
  splitAt,
} from './fixtures.js';

const RPC_GET = `<rpc message-id="100" xmlns="${NS}"><get/></rpc>`;
const RPC_EDIT = `<rpc message-id="200" xmlns="${NS}" xmlns:ex="urn:example" ex:user="fred &amp; co"><edit-config><target><running/></target><config/></edit-config></rpc>`;
const REPLY_GET = `<rpc-reply message-id="100" xmlns="${NS}"><data/></rpc-reply>`;

function filterFor(framing: Framing, opts: { readOnly?: boolean; maxHeadBytes?: number } = {}) {
  const denials: Denial[] = [];
  const filter = new RpcFilter({
    ...(opts.readOnly === false ? {} : { allows: readOnlyAllows }),
    who: 'user bob is read-only and',
    maxMessageBytes: 1 << 20,
    maxHelloBytes: 1 << 16,
    ...(opts.maxHeadBytes ? { maxHeadBytes: opts.maxHeadBytes } : {}),
  });
  filter.onDenied = (d) => denials.push(d);
  const toDevice: Buffer[] = [];
  const toClient: Buffer[] = [];
  const take = (o: { toDevice: Buffer[]; toClient: Buffer[] }) => {
    toDevice.push(...o.toDevice.map((b) => Buffer.from(b)));
    toClient.push(...o.toClient.map((b) => Buffer.from(b)));
  };
  const deviceHello = framing === 'chunked' ? DEVICE_HELLO_11 : DEVICE_HELLO_10;
  const clientHello = framing === 'chunked' ? CLIENT_HELLO_11 : CLIENT_HELLO_10;
  return {
    filter,
    denials,
    device: (pieces: Iterable<Buffer>) => {
      for (const p of pieces) take(filter.fromDevice(p));
    },
    client: (pieces: Iterable<Buffer>) => {
      for (const p of pieces) take(filter.fromClient(p));
    },
    deviceHello: eomEncode([deviceHello]),
    clientHello: eomEncode([clientHello]),
    sentToDevice: () => Buffer.concat(toDevice),
    sentToClient: () => Buffer.concat(toClient),
  };
}

/** The payloads of a stream of messages in `framing` (hellos first, always end-of-message). */
function messages(framing: Framing, stream: Buffer, hellos = 1): string[] {
  const out: string[] = [];
  let rest = stream.toString('utf8');
  for (let i = 0; i < hellos; i++) {
    const e = rest.indexOf(']]>]]>');
    out.push(rest.slice(0, e));
    rest = rest.slice(e + 6);
  }
  if (framing === 'eom') return [...out, ...rest.split(']]>]]>').slice(0, -1)];
  let msg = '';
  while (rest.length > 0) {
    const m = /^\n#(\d+)\n/.exec(rest);
    if (m) {
      const n = Number(m[1]);
      msg += rest.slice(m[0].length, m[0].length + n);
      rest = rest.slice(m[0].length + n);
    } else if (rest.startsWith('\n##\n')) {
      out.push(msg);
      msg = '';
      rest = rest.slice(4);
    } else throw new Error(`bad chunked stream at ${JSON.stringify(rest.slice(0, 20))}`);
  }
  return out;
}

for (const framing of ['eom', 'chunked'] as const) {
  const requests = [RPC_GET, RPC_EDIT, RPC_GET_CONFIG];
  const allowedWire = (chunk?: number) => encode(framing, [RPC_GET, RPC_GET_CONFIG], chunk);

  test(`${framing}: a refused RPC between allowed ones never reaches the device, for every split of the client's bytes`, (t) => {
    const h = filterFor(framing);
    const stream = Buffer.concat([h.clientHello, encode(framing, requests, 7)]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = filterFor(framing);
      f.device([f.deviceHello]);
      f.client(splitAt(stream, [cut]));
      const expected = Buffer.concat([f.clientHello, allowedWire(7)]);
      if (!f.sentToDevice().equals(expected)) {
        t.fail(`cut at ${cut}: the device got ${JSON.stringify(f.sentToDevice().toString())}`);
        return;
      }
    }
    const f = filterFor(framing);
    f.device([f.deviceHello]);
    f.client(bytewise(stream));
    t.true(f.sentToDevice().equals(Buffer.concat([f.clientHello, allowedWire(7)])), 'one byte at a time');
    t.deepEqual(f.denials, [{ operation: 'edit-config', messageId: '200' }]);
    t.is(f.filter.rpcs, 3);
    t.is(f.filter.denied, 1);
  });

  test(`${framing}: the refusal waits for the replies owed to earlier RPCs and keeps its place (RFC 6241 §4.5), for every split of the device's bytes`, (t) => {
    const replies = encode(framing, [REPLY_GET, REPLY_DATA], 50);
    for (let cut = 0; cut <= replies.length; cut++) {
      const f = filterFor(framing);
      f.device([f.deviceHello]);
      f.client([f.clientHello, encode(framing, requests)]);
      const beforeReplies = f.sentToClient().length;
      t.is(beforeReplies, f.deviceHello.length, 'nothing is answered before the reply to the <get>');
      t.is(f.filter.queued, 1);
      f.device(splitAt(replies, [cut]));
      const got = messages(framing, f.sentToClient());
      if (got.length !== 4 || got[1] !== REPLY_GET || got[3] !== REPLY_DATA || readMessageHead(got[2]!)?.result !== 'access-denied') {
        t.fail(`cut at ${cut}: the client got ${JSON.stringify(got.slice(1))}`);
        return;
      }
    }
    t.pass();
  });

  test(`${framing}: a refusal with nothing owed is answered at once, but never inside a message toward the client`, (t) => {
    const f = filterFor(framing);
    f.device([f.deviceHello]);
    f.client([f.clientHello]);
    const note = encode(framing, [NOTIFICATION], 40);
    const half = Math.floor(note.length / 2);
    f.device([note.subarray(0, half)]);
    f.client([encode(framing, [RPC_COMMIT])]);
    t.is(f.filter.queued, 1, 'held while a notification is half-way to the client');
    f.device([note.subarray(half)]);
    t.is(f.filter.queued, 0);
    const got = messages(framing, f.sentToClient());
    t.is(got[1], NOTIFICATION);
    const head = readMessageHead(got[2]!);
    t.deepEqual(head, { root: 'rpc-reply', messageId: '103', result: 'access-denied' });
    t.is(f.sentToDevice().length, f.clientHello.length, 'the <commit> never reached the device');
  });

  test(`${framing}: random splits of both directions, many pipelined RPCs`, (t) => {
    const rand = prng(framing === 'eom' ? 7 : 8);
    const ops: string[] = [];
    const replies: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 60; i++) {
      const allowed = rand() < 0.5;
      ops.push(allowed ? RPC_GET.replace('"100"', `"${i}"`) : RPC_EDIT.replace('"200"', `"${i}"`));
      if (allowed) replies.push(REPLY_GET.replace('"100"', `"${i}"`));
      expected.push(String(i));
    }
    const f = filterFor(framing);
    f.device([f.deviceHello]);
    f.client(randomSplit(Buffer.concat([f.clientHello, encode(framing, ops, 33)]), rand, 40));
    f.device(randomSplit(encode(framing, replies, 29), rand, 40));
    const got = messages(framing, f.sentToClient())
      .slice(1)
      .map((m) => readMessageHead(m)?.messageId);
    t.deepEqual(got, expected, 'every reply in the order of the requests');
    t.is(messages(framing, f.sentToDevice()).length - 1, replies.length);
  });
}

test("the refusal copies the <rpc>'s message-id, every other attribute and its prefix (RFC 6241 §4.2)", (t) => {
  const f = filterFor('eom');
  f.device([f.deviceHello]);
  f.client([f.clientHello, eomEncode([RPC_LOCK, RPC_EDIT])]);
  const [, lock, edit] = messages('eom', f.sentToClient());
  t.is(
    lock,
    `<nc:rpc-reply xmlns:nc="${NS}" xmlns:x="urn:x" x:tag="a" message-id="102"><nc:rpc-error><nc:error-type>protocol</nc:error-type><nc:error-tag>access-denied</nc:error-tag><nc:error-severity>error</nc:error-severity><nc:error-message xml:lang="en">access denied: user bob is read-only and may not call lock</nc:error-message></nc:rpc-error></nc:rpc-reply>`,
  );
  t.regex(edit!, /^<rpc-reply message-id="200" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:ex="urn:example" ex:user="fred &amp; co"><rpc-error>/);
});

test('reads, subscriptions and close-session pass; by namespace, not by name alone', (t) => {
  const f = filterFor('eom');
  f.device([f.deviceHello]);
  const ok = [
    RPC_GET_CONFIG,
    `<rpc message-id="1" xmlns="${NS}"><get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><identifier>x</identifier></get-schema></rpc>`,
    `<rpc message-id="2" xmlns="${NS}"><create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"/></rpc>`,
    `<rpc message-id="3" xmlns="${NS}" xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"><!-- a comment --><ds:get-data/></rpc>`,
    `<rpc message-id="4" xmlns="${NS}"><close-session/></rpc>`,
  ];
  const refused = [
    `<rpc message-id="5" xmlns="${NS}"><get xmlns="urn:vendor:evil"/></rpc>`, // a vendor RPC that is named get
    `<rpc message-id="6" xmlns="${NS}"><validate><source><running/></source></validate></rpc>`,
    `<rpc message-id="7" xmlns="${NS}"><kill-session><session-id>3</session-id></kill-session></rpc>`,
    `<!DOCTYPE rpc [<!ENTITY e "<edit-config/>">]><rpc message-id="8" xmlns="${NS}">&e;<get/></rpc>`,
    `<rpc message-id="9" xmlns="${NS}"/>`,
    `<rpc message-id="10" xmlns="${NS}"><x:get/></rpc>`, // unbound prefix
  ];
  f.client([f.clientHello, eomEncode([...ok, ...refused])]);
  t.deepEqual(messages('eom', f.sentToDevice()).slice(1), ok);
  t.deepEqual(
    f.denials.map((d) => d.messageId),
    ['5', '6', '7', '8', '9', '10'],
  );
});

test('an operation beyond the head cap is refused, and the whole message is dropped', (t) => {
  const f = filterFor('chunked', { maxHeadBytes: 256 });
  f.device([f.deviceHello]);
  const padded = `<rpc message-id="1" xmlns="${NS}">${' '.repeat(400)}<get/></rpc>`;
  f.client([f.clientHello, encode('chunked', [padded, RPC_GET], 10)]);
  t.deepEqual(messages('chunked', f.sentToDevice()).slice(1), [RPC_GET]);
  t.is(readMessageHead(messages('chunked', f.sentToClient())[1]!)?.result, 'access-denied');
});

test('without a policy everything passes and RPCs are counted', (t) => {
  const f = filterFor('chunked', { readOnly: false });
  f.device([f.deviceHello]);
  const stream = Buffer.concat([f.clientHello, encode('chunked', [RPC_GET, RPC_EDIT, RPC_COMMIT], 5)]);
  f.client(bytewise(stream));
  t.true(f.sentToDevice().equals(stream));
  t.is(f.filter.rpcs, 3);
  t.is(f.filter.denied, 0);
});

test("RPCs sent before the device's hello are held until the framing is known, then filtered", (t) => {
  const f = filterFor('chunked');
  f.client([Buffer.concat([f.clientHello, encode('chunked', [RPC_EDIT, RPC_GET])])]);
  t.is(f.sentToDevice().length, f.clientHello.length);
  f.device([f.deviceHello]);
  t.deepEqual(messages('chunked', f.sentToDevice()).slice(1), [RPC_GET]);
  t.is(readMessageHead(messages('chunked', f.sentToClient())[1]!)?.result, 'access-denied');
});

test('readRpcHead waits for the operation, knows non-RPC messages', (t) => {
  t.is(readRpcHead(`<rpc message-id="1" xmlns="${NS}">`, false), undefined);
  t.is(readRpcHead(`<rpc message-id="1" xmlns="${NS}"><get`, false), undefined);
  t.deepEqual((readRpcHead(`<rpc xmlns="${NS}"><get-config>`, false) as { op: unknown }).op, { name: 'get-config', namespace: NS });
  t.deepEqual(readRpcHead(`<hello xmlns="${NS}">`, false), { kind: 'other' });
  t.is(accessDeniedReply(undefined, 'x').startsWith(`<rpc-reply xmlns="${NS}">`), true);
});
