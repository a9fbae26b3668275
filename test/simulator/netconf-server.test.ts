// The NETCONF server over in-memory streams: protocol details and datastore semantics.
// (The SSH path is covered in device.test.ts.)
import test from 'ava';
import type { Duplex } from 'node:stream';
import { DeviceDatastore } from '../../src/simulator/datastore.js';
import { NetconfSession, type NetconfSessionOptions } from '../../src/simulator/netconf-server.js';
import { BASE_10, BASE_11, BASE_NS, NetconfClient, duplexPair, errorTag } from './helpers.js';

const SIM = 'urn:callhome-gateway:simulator';

function open(
  ds = new DeviceDatastore('dev1'),
  options: Partial<NetconfSessionOptions> = {},
  delayMs = -1,
): { nc: NetconfClient; session: NetconfSession; ds: DeviceDatastore; server: Duplex } {
  const [server, client] = duplexPair(delayMs);
  const session = new NetconfSession(server, { datastore: ds, ...options });
  return { nc: new NetconfClient(client), session, ds, server };
}

const getConfig = (source = 'running', filter = ''): string => `<get-config><source><${source}/></source>${filter}</get-config>`;
const edit = (target: string, config: string, extra = ''): string => `<edit-config><target><${target}/></target>${extra}<config>${config}</config></edit-config>`;

test('a big reply is written under backpressure, exactly the configured size', async (t) => {
  for (const caps of [[BASE_10, BASE_11], [BASE_10]]) {
    const size = 8 * 1024 * 1024 + 12345;
    const { nc, server } = open(undefined, { replySize: () => size }, 1);
    let maxBuffered = 0;
    const origWrite = server.write.bind(server);
    server.write = ((chunk: Buffer, ...rest: unknown[]) => {
      const r = (origWrite as (c: Buffer, ...x: unknown[]) => boolean)(chunk, ...rest);
      maxBuffered = Math.max(maxBuffered, server.writableLength);
      return r;
    }) as typeof server.write;
    await nc.hello(caps);
    nc.send(`<rpc message-id="1" xmlns="${BASE_NS}">${getConfig()}</rpc>`);
    const reply = await nc.read();
    t.is(reply.body.length, size);
    const text = reply.body.toString();
    t.true(text.startsWith(`<rpc-reply message-id="1" xmlns="${BASE_NS}"><data>`));
    t.true(text.endsWith('</bulk></data></rpc-reply>'));
    // never more than the stream's high-water mark plus one 64 KiB piece waiting
    t.true(maxBuffered <= server.writableHighWaterMark + 64 * 1024, `buffered up to ${maxBuffered}`);
    if (caps.includes(BASE_11)) {
      t.true(reply.chunks.length > 100);
      t.true(reply.chunks.every((c) => c <= 64 * 1024));
    }
  }
});

test('subtree filters: selection, containment, content match', async (t) => {
  const { nc } = open(undefined, { replySize: () => 100_000 });
  await nc.hello();
  const hostOnly = await nc.rpc(getConfig('running', `<filter type="subtree"><system xmlns="${SIM}"><hostname/></system></filter>`));
  t.regex(hostOnly, /<data><system xmlns="urn:callhome-gateway:simulator"><hostname>dev1<\/hostname><\/system><\/data>/);
  t.false(hostOnly.includes('<bulk'));
  const eth0 = await nc.rpc(getConfig('running', `<filter><interfaces xmlns="${SIM}"><interface><name>eth0</name></interface></interfaces></filter>`));
  t.regex(eth0, /<interface><name>eth0<\/name><enabled>true<\/enabled><\/interface>/);
  const none = await nc.rpc(getConfig('running', `<filter><interfaces xmlns="${SIM}"><interface><name>eth9</name></interface></interfaces></filter>`));
  t.regex(none, /<data><\/data>/);
  const bulkOnly = await nc.rpc(getConfig('running', `<filter><bulk xmlns="${SIM}"/></filter>`));
  t.true(bulkOnly.includes('<bulk') && bulkOnly.length === 100_000);
  const empty = await nc.rpc(getConfig('running', '<filter/>'));
  t.regex(empty, /<data><\/data>/);
  const get = await nc.rpc(`<get><filter><simulator-state xmlns="${SIM}"/></filter></get>`);
  t.regex(get, /<sessions>1<\/sessions>/);
  t.is(errorTag(await nc.rpc(`<get><filter type="xpath" select="/x"/></get>`)), 'operation-not-supported');
});

test('edit-config: merge, create, delete, replace, none, test-only, and the candidate', async (t) => {
  const { nc, ds } = open();
  await nc.hello();
  const ifs = (x: string): string => `<interfaces xmlns="${SIM}">${x}</interfaces>`;
  t.regex(await nc.rpc(edit('running', ifs('<interface><name>eth1</name><mtu>9000</mtu></interface>'))), /<ok\/>/);
  t.regex(await nc.rpc(edit('running', ifs('<interface><name>eth0</name><description>uplink</description></interface>'))), /<ok\/>/);
  let running = await nc.rpc(getConfig());
  t.regex(
    running,
    /<interface><name>eth0<\/name><enabled>true<\/enabled><description>uplink<\/description><\/interface><interface><name>eth1<\/name><mtu>9000<\/mtu><\/interface>/,
  );
  const nc0 = `xmlns:nc="${BASE_NS}"`;
  t.is(errorTag(await nc.rpc(edit('running', `<interfaces xmlns="${SIM}" ${nc0}><interface nc:operation="create"><name>eth1</name></interface></interfaces>`))), 'data-exists');
  t.is(errorTag(await nc.rpc(edit('running', `<interfaces xmlns="${SIM}" ${nc0}><interface nc:operation="delete"><name>eth7</name></interface></interfaces>`))), 'data-missing');
  t.is(errorTag(await nc.rpc(edit('running', `<interfaces xmlns="${SIM}" ${nc0}><interface nc:operation="explode"><name>eth1</name></interface></interfaces>`))), 'bad-attribute');
  t.regex(await nc.rpc(edit('running', `<interfaces xmlns="${SIM}" ${nc0}><interface nc:operation="delete"><name>eth1</name></interface></interfaces>`)), /<ok\/>/);
  t.regex(await nc.rpc(edit('running', `<system xmlns="${SIM}" ${nc0} nc:operation="replace"><hostname>r1</hostname></system>`)), /<ok\/>/);
  t.is(errorTag(await nc.rpc(edit('running', `<snmp xmlns="${SIM}"><community>x</community></snmp>`, '<default-operation>none</default-operation>'))), 'data-missing');
  t.regex(await nc.rpc(edit('running', `<system xmlns="${SIM}"><hostname>never</hostname></system>`, '<test-option>test-only</test-option>')), /<ok\/>/);
  t.is(errorTag(await nc.rpc(edit('running', '<x/>', '<default-operation>sideways</default-operation>'))), 'invalid-value');
  running = await nc.rpc(getConfig());
  t.regex(running, /<system xmlns="urn:callhome-gateway:simulator"><hostname>r1<\/hostname><\/system>/);
  t.false(running.includes('eth1'));
  // the candidate: invisible in running until commit, gone after discard-changes
  await nc.rpc(edit('candidate', `<system xmlns="${SIM}"><contact>noc</contact></system>`));
  t.false((await nc.rpc(getConfig())).includes('noc'));
  t.true((await nc.rpc(getConfig('candidate'))).includes('<contact>noc</contact>'));
  t.regex(await nc.rpc('<discard-changes/>'), /<ok\/>/);
  t.false((await nc.rpc(getConfig('candidate'))).includes('noc'));
  t.is(errorTag(await nc.rpc('<get-config><source><startup/></source></get-config>')), 'invalid-value');
  t.is(errorTag(await nc.rpc('<edit-config><target><running/></target></edit-config>')), 'missing-element');
  t.regex(await nc.rpc('<validate><source><candidate/></source></validate>'), /<ok\/>/);
  t.is(ds.lockHolder('running'), 0);
});

test('rpc attributes and prefixes come back; protocol errors are answered', async (t) => {
  const { nc } = open();
  await nc.hello();
  // RFC 6241 §4.2: all attributes of <rpc>, xmlns included, in <rpc-reply>
  nc.send(`<nc:rpc xmlns:nc="${BASE_NS}" message-id="9" xmlns:ex="urn:x" ex:user="bob" note='a "b"'><nc:lock><nc:target><nc:running/></nc:target></nc:lock></nc:rpc>`);
  t.is((await nc.read()).body.toString(), `<nc:rpc-reply xmlns:nc="${BASE_NS}" message-id="9" xmlns:ex="urn:x" ex:user="bob" note='a "b"'><nc:ok/></nc:rpc-reply>`);
  nc.send(`<nc:rpc xmlns:nc="${BASE_NS}" message-id="10"><nc:lock><nc:target><nc:running/></nc:target></nc:lock></nc:rpc>`);
  const denied = (await nc.read()).body.toString();
  t.regex(denied, /^<nc:rpc-reply xmlns:nc="[^"]+" message-id="10"><nc:rpc-error><nc:error-type>protocol<\/nc:error-type><nc:error-tag>lock-denied<\/nc:error-tag>/);
  t.regex(denied, /<nc:error-info><nc:session-id>1<\/nc:session-id><\/nc:error-info>/);
  nc.send(`<rpc xmlns="${BASE_NS}"><get/></rpc>`);
  const noId = (await nc.read()).body.toString();
  t.is(errorTag(noId), 'missing-attribute');
  t.regex(noId, /<bad-attribute>message-id<\/bad-attribute>/);
  nc.send('<rpc message-id="3" xmlns="urn:wrong"><get/></rpc>');
  t.is(errorTag((await nc.read()).body.toString()), 'unknown-element');
  nc.send('<rpc message-id="4" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get></rpc>');
  t.is(errorTag((await nc.read()).body.toString()), 'malformed-message');
  nc.send(`<!DOCTYPE x [<!ENTITY a "b">]><rpc message-id="5" xmlns="${BASE_NS}"><get/></rpc>`);
  t.is(errorTag((await nc.read()).body.toString()), 'malformed-message');
  t.is(errorTag(await nc.rpc('<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"/>')), 'operation-not-supported');
  t.is(errorTag(await nc.rpc('<commit><confirmed/></commit>')), 'operation-not-supported');
  // the session survived all of it
  t.regex(await nc.rpc('<get/>'), /<data>/);
});

test('pipelined requests are answered in order; a request over the cap gets too-big', async (t) => {
  const { nc } = open(undefined, { maxMessageSize: 4096 });
  await nc.hello();
  const big = `<rpc message-id="big" xmlns="${BASE_NS}">${edit('candidate', `<system xmlns="${SIM}"><location>${'x'.repeat(100_000)}</location></system>`)}</rpc>`;
  nc.send(`<rpc message-id="a" xmlns="${BASE_NS}"><get/></rpc>`);
  nc.send(big);
  nc.send(`<rpc message-id="c" xmlns="${BASE_NS}"><lock><target><candidate/></target></lock></rpc>`);
  const a = (await nc.read()).body.toString();
  const b = (await nc.read()).body.toString();
  const c = (await nc.read()).body.toString();
  t.regex(a, /message-id="a"/);
  t.regex(b, /^<rpc-reply message-id="big"/);
  t.is(errorTag(b), 'too-big');
  t.regex(c, /message-id="c".*<ok\/>/);
});

test('lock rules: candidate with changes, unlock by another, release when a session ends', async (t) => {
  const ds = new DeviceDatastore('dev1');
  const a = open(ds);
  const b = open(ds);
  await a.nc.hello();
  await b.nc.hello();
  await a.nc.rpc(edit('candidate', `<system xmlns="${SIM}"><contact>x</contact></system>`));
  t.is(errorTag(await b.nc.rpc('<lock><target><candidate/></target></lock>')), 'lock-denied');
  await a.nc.rpc('<discard-changes/>');
  t.regex(await b.nc.rpc('<lock><target><candidate/></target></lock>'), /<ok\/>/);
  t.is(errorTag(await a.nc.rpc('<unlock><target><candidate/></target></unlock>')), 'operation-failed');
  t.is(errorTag(await a.nc.rpc(edit('candidate', `<system xmlns="${SIM}"><contact>y</contact></system>`))), 'in-use');
  await b.nc.rpc(edit('candidate', `<system xmlns="${SIM}"><contact>z</contact></system>`));
  // RFC 6241 §8.3.5.2: the holder goes, its uncommitted changes and its lock go too
  b.nc.channel.end();
  await new Promise((r) => setTimeout(r, 20));
  t.is(ds.lockHolder('candidate'), 0);
  t.false((await a.nc.rpc(getConfig('candidate'))).includes('<contact>z'));
  t.regex(await a.nc.rpc('<lock><target><candidate/></target></lock>'), /<ok\/>/);
});

test('kill-session ends the other session and frees its locks', async (t) => {
  const ds = new DeviceDatastore('dev1');
  const a = open(ds);
  const b = open(ds);
  await a.nc.hello();
  await b.nc.hello();
  await b.nc.rpc('<lock><target><running/></target></lock>');
  t.is(errorTag(await a.nc.rpc(`<kill-session><session-id>${a.session.id}</session-id></kill-session>`)), 'invalid-value');
  t.is(errorTag(await a.nc.rpc('<kill-session><session-id>999</session-id></kill-session>')), 'invalid-value');
  t.regex(await a.nc.rpc(`<kill-session><session-id>${b.session.id}</session-id></kill-session>`), /<ok\/>/);
  t.true(b.session.isClosed);
  await t.throwsAsync(b.nc.read(1000));
  t.is(ds.lockHolder('running'), 0);
});

test('hello rules: session-id from the client, no base capability, not a hello', async (t) => {
  for (const hello of [
    `<hello xmlns="${BASE_NS}"><capabilities><capability>${BASE_10}</capability></capabilities><session-id>4</session-id></hello>`,
    `<hello xmlns="${BASE_NS}"><capabilities><capability>urn:x</capability></capabilities></hello>`,
    `<rpc message-id="1" xmlns="${BASE_NS}"><get/></rpc>`,
    '<hello',
  ]) {
    const { nc, session } = open();
    const server = (await nc.read()).body.toString();
    t.regex(server, /<session-id>\d+<\/session-id>/);
    nc.send(hello);
    await t.throwsAsync(nc.read(1000), undefined, hello);
    t.true(session.isClosed);
  }
});

test('requests sent before end-of-input are answered before the session closes', async (t) => {
  const { nc, session } = open();
  await nc.hello([BASE_10]);
  nc.send(`<rpc message-id="1" xmlns="${BASE_NS}"><get/></rpc>`);
  nc.channel.end();
  t.regex((await nc.read()).body.toString(), /message-id="1"/);
  await t.throwsAsync(nc.read(1000));
  t.true(session.isClosed);
});
