import test from 'ava';
import { FramingError } from '../../src/netconf/framing.js';
import { HelloError, negotiatedFraming, parseHello } from '../../src/netconf/hello.js';
import { CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1 } from '../../src/netconf/vocabulary.js';
import { decodeEntities, xmlTokens } from '../../src/netconf/xml.js';
import { CLIENT_HELLO_10, CLIENT_HELLO_11, DEVICE_HELLO_10, DEVICE_HELLO_11, DEVICE_HELLO_11_CAPS, NS, RPC_COMMIT } from './fixtures.js';

test('a netconfd-style device hello: capabilities decoded in order, session-id', (t) => {
  t.deepEqual(parseHello(DEVICE_HELLO_11), { capabilities: DEVICE_HELLO_11_CAPS, sessionId: '4' });
  t.deepEqual(parseHello(Buffer.from(DEVICE_HELLO_11)).capabilities, DEVICE_HELLO_11_CAPS);
});

test('an ncclient-style client hello with an nc: prefix and no session-id', (t) => {
  const h = parseHello(CLIENT_HELLO_11);
  t.deepEqual(h.capabilities, [
    CAPABILITY_BASE_1_0,
    CAPABILITY_BASE_1_1,
    'urn:ietf:params:netconf:capability:writable-running:1.0',
    'urn:ietf:params:netconf:capability:candidate:1.0',
  ]);
  t.false('sessionId' in h);
});

test('whitespace, comments, CDATA, a BOM and single quotes are handled', (t) => {
  const text =
    "\ufeff<?xml version='1.0'?>\n<!-- greeting -->\n<hello xmlns='" +
    NS +
    "'>\n  <capabilities>\n    <capability>\n      urn:ietf:params:netconf:base:1.1\n    </capability>" +
    '<capability><![CDATA[urn:x:y?a=1&b=2]]></capability>' +
    '<capability/>' +
    '<capability>   </capability>' +
    '<capability>urn:a&#x3a;b&#58;c</capability>' +
    '</capabilities>\n  <session-id> 17 </session-id>\n</hello>\n';
  t.deepEqual(parseHello(text), {
    capabilities: [CAPABILITY_BASE_1_1, 'urn:x:y?a=1&b=2', 'urn:a:b:c'],
    sessionId: '17',
  });
});

test('a hello with no namespace at all is accepted (older peers)', (t) => {
  t.deepEqual(parseHello('<hello><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>'), {
    capabilities: [CAPABILITY_BASE_1_0],
  });
});

test('capability elements outside <capabilities> are not capabilities', (t) => {
  const h = parseHello(
    `<hello xmlns="${NS}"><capabilities><capability>a</capability><x><capability>b</capability></x></capabilities>` +
      '<capability>c</capability><other><session-id>9</session-id></other></hello>',
  );
  t.deepEqual(h, { capabilities: ['a'] });
});

const NOT_HELLOS: [string, string][] = [
  ['an rpc', RPC_COMMIT],
  ['empty input', ''],
  ['only an XML declaration', '<?xml version="1.0"?>'],
  ['plain text', 'SSH-2.0-OpenSSH_9.6'],
  ['a hello in another namespace', '<hello xmlns="urn:example:not-netconf"><capabilities/></hello>'],
  ['an undeclared prefix', '<nc:hello><nc:capabilities/></nc:hello>'],
  ['a truncated hello', DEVICE_HELLO_11.slice(0, 300)],
  ['mismatched end tag', `<hello xmlns="${NS}"><capabilities></capability></hello>`],
  ['two roots', `<hello xmlns="${NS}"/><hello xmlns="${NS}"/>`],
  ['text after the root', `<hello xmlns="${NS}"/>junk`],
  ['an unquoted attribute', '<hello xmlns=urn:x></hello>'],
  ['a lone <', '< hello>'],
  ['a chunked-framed hello', `\n#30\n<hello xmlns="${NS}"/>\n##\n`],
];

for (const [name, text] of NOT_HELLOS) {
  test(`rejected with HelloError: ${name}`, (t) => {
    const err = t.throws(() => parseHello(text), { instanceOf: HelloError });
    t.true(err instanceof FramingError);
    t.is(err.code, 'GW_ERR_NOT_NETCONF');
  });
}

test('the error says what arrived instead of a hello', (t) => {
  t.throws(() => parseHello(RPC_COMMIT), { message: /expected a NETCONF <hello> message, got <rpc>/ });
});

test('negotiatedFraming: chunked only when both advertise base:1.1 (RFC 6242 §4.1)', (t) => {
  const d11 = parseHello(DEVICE_HELLO_11).capabilities;
  const d10 = parseHello(DEVICE_HELLO_10).capabilities;
  const c11 = parseHello(CLIENT_HELLO_11).capabilities;
  const c10 = parseHello(CLIENT_HELLO_10).capabilities;
  t.is(negotiatedFraming(d11, c11), 'chunked');
  t.is(negotiatedFraming(c11, d11), 'chunked');
  t.is(negotiatedFraming(d11, c10), 'eom');
  t.is(negotiatedFraming(d10, c11), 'eom');
  t.is(negotiatedFraming(d10, c10), 'eom');
  t.is(negotiatedFraming([], []), 'eom');
  // A capability that merely contains the URI is not it.
  t.is(negotiatedFraming([`${CAPABILITY_BASE_1_1}x`], [CAPABILITY_BASE_1_1]), 'eom');
});

test('entity decoding leaves unknown or out-of-range references literal', (t) => {
  t.is(decodeEntities('a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;'), 'a&b<>"\'AB');
  t.is(decodeEntities('&nbsp;&#x110000;&#99999999;&;&amp'), '&nbsp;&#x110000;&#99999999;&;&amp');
});

test('the tokenizer reports a truncated prefix as incomplete, not as an error', (t) => {
  const prefix = '<rpc message-id="1" xmlns="urn:x"><get-con';
  const it = xmlTokens(prefix);
  const seen: string[] = [];
  let r = it.next();
  while (!r.done) {
    if (r.value.type === 'start') seen.push(r.value.local);
    r = it.next();
  }
  t.deepEqual(seen, ['rpc']);
  t.false(r.value);
});
