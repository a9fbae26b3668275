import test from 'ava';
import { FrameScanner } from '../../src/netconf/framing.js';
import { parseHello } from '../../src/netconf/hello.js';
import {
  CAPABILITY_BASE_1_0,
  CAPABILITY_BASE_1_1,
  END_OF_CHUNKS,
  EOM,
  EOM_MARKER,
  NETCONF_BASE_NS,
  baseCapabilities,
  closeSessionRpc,
  helloMessage,
  isCloseSession,
  keepaliveRpc,
  okReply,
  readMessageHead,
  rpcMessage,
} from '../../src/netconf/vocabulary.js';

test('the base namespace, capabilities and framing markers are those of RFC 6241 and RFC 6242', (t) => {
  t.is(NETCONF_BASE_NS, 'urn:ietf:params:xml:ns:netconf:base:1.0');
  t.is(CAPABILITY_BASE_1_0, 'urn:ietf:params:netconf:base:1.0');
  t.is(CAPABILITY_BASE_1_1, 'urn:ietf:params:netconf:base:1.1');
  t.is(EOM, ']]>]]>');
  t.deepEqual(EOM_MARKER, Buffer.from(']]>]]>'));
  t.deepEqual(END_OF_CHUNKS, Buffer.from('\n##\n'));
  t.deepEqual(baseCapabilities('1.0'), [CAPABILITY_BASE_1_0]);
  t.deepEqual(baseCapabilities('1.1'), [CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1]);
});

test('helloMessage is a hello the gateway parser reads back: capabilities in order, session-id only for a server', (t) => {
  const client = helloMessage(baseCapabilities('1.1'));
  t.true(client.startsWith('<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'));
  t.deepEqual(parseHello(Buffer.from(client)), { capabilities: [CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1] });
  const server = helloMessage([CAPABILITY_BASE_1_0, 'urn:x:cap'], 42);
  t.deepEqual(parseHello(Buffer.from(server)), { capabilities: [CAPABILITY_BASE_1_0, 'urn:x:cap'], sessionId: '42' });
});

test('the RPCs the gateway sends read back as what they are, message-id included', (t) => {
  t.deepEqual(readMessageHead(closeSessionRpc('idle-release')), { root: 'rpc', messageId: 'idle-release', operation: 'close-session' });
  t.true(closeSessionRpc('x').startsWith('<?xml version="1.0" encoding="UTF-8"?><rpc '));
  t.deepEqual(readMessageHead(keepaliveRpc('callhome-gateway-keepalive-1')), { root: 'rpc', messageId: 'callhome-gateway-keepalive-1', operation: 'get' });
  t.is(keepaliveRpc('k'), '<rpc message-id="k" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get><filter type="subtree"/></get></rpc>');
  t.deepEqual(readMessageHead(rpcMessage('r-1', '<unlock><target><running/></target></unlock>')), { root: 'rpc', messageId: 'r-1', operation: 'unlock' });
  // A message-id with XML specials stays one attribute value.
  t.deepEqual(readMessageHead(rpcMessage('a"&<b', '<get/>')), { root: 'rpc', messageId: 'a"&<b', operation: 'get' });
});

test('okReply answers with the request message-id, escaped, or none', (t) => {
  t.is(okReply('7'), '<rpc-reply message-id="7" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>');
  t.is(okReply(undefined), '<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>');
  t.deepEqual(readMessageHead(okReply('x"y&z')), { root: 'rpc-reply', messageId: 'x"y&z', result: 'ok' });
});

test('isCloseSession recognises a close-session under any prefix, and nothing else', (t) => {
  t.true(isCloseSession(readMessageHead(closeSessionRpc('1'))));
  t.true(isCloseSession(readMessageHead(`<nc:rpc xmlns:nc="${NETCONF_BASE_NS}" message-id="2"><nc:close-session/></nc:rpc>`)));
  t.false(isCloseSession(readMessageHead(keepaliveRpc('3'))));
  t.false(isCloseSession(readMessageHead(okReply('4'))));
  t.false(isCloseSession(readMessageHead('<close-session/>')));
  t.false(isCloseSession(undefined));
});

test('EOM_MARKER ends a message for the gateway scanner', (t) => {
  const got: string[] = [];
  let cur = '';
  const scanner = new FrameScanner('eom', { data: (seg) => (cur += seg.toString()), end: () => (got.push(cur), (cur = '')) }, { maxMessageBytes: 1000 });
  scanner.push(Buffer.concat([Buffer.from(closeSessionRpc('1')), EOM_MARKER, Buffer.from(okReply('1')), EOM_MARKER]));
  t.deepEqual(got, [closeSessionRpc('1'), okReply('1')]);
});
