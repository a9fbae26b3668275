// The held session's lending rules with in-process streams standing in for the device and
// the clients (the real peers are in test/e2e/tls.test.ts): order-preserving local
// <close-session>, waiting for the session, stale replies dropped, re-framing per client.
import test from 'ava';
import { Duplex, PassThrough } from 'node:stream';
import { HeldSessionMetrics } from '../../src/device/held-metrics.js';
import { HeldSession } from '../../src/device/held/session.js';
import { createLogger } from '../../src/log.js';
import { GatewayMetrics } from '../../src/metrics.js';
import { encodeMessage } from '../../src/netconf/reframe.js';

const NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
const HELLO_11 = `<hello xmlns="${NS}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability><capability>urn:ietf:params:netconf:base:1.1</capability></capabilities><session-id>7</session-id></hello>`;
const HELLO_10_CLIENT = `<hello xmlns="${NS}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>`;

/** Two ends of an in-memory duplex connection. */
function pair(): [Duplex, Duplex] {
  const a2b = new PassThrough();
  const b2a = new PassThrough();
  const ends: [Duplex, Duplex] = [Duplex.from({ readable: b2a, writable: a2b }), Duplex.from({ readable: a2b, writable: b2a })];
  for (const end of ends) end.on('error', () => {}); // destroy() reports an AbortError
  return ends;
}

function collector(stream: Duplex) {
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return {
    get text() {
      return text;
    },
    until: (re: RegExp, ms = 3000) =>
      new Promise<string>((resolve, reject) => {
        const start = Date.now();
        const tick = () => (re.test(text) ? resolve(text) : Date.now() - start > ms ? reject(new Error(`no ${re} in ${JSON.stringify(text)}`)) : setTimeout(tick, 5));
        tick();
      }),
  };
}

async function setup(waitForDevice = 0) {
  const [gwSide, deviceSide] = pair();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const held = new HeldSessionMetrics(metrics.registry);
  const session = new HeldSession(
    gwSide,
    {
      transport: 'tls',
      metrics,
      held,
      logger: createLogger('silent'),
      onFatal: (r) => {
        throw r;
      },
    },
    { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16, helloTimeout: 5, waitForDevice, keepaliveInterval: 0, drainTimeout: 5, maxBase: '1.1' },
  );
  const device = collector(deviceSide);
  const started = session.start();
  deviceSide.write(encodeMessage('eom', HELLO_11));
  await started;
  return { session, deviceSide, device, held };
}

/** One message in chunked framing (the device's, after a base:1.1 hello). */
const chunk = (s: string) => `\n#${Buffer.byteLength(s)}\n${s}\n##\n`;

function client() {
  const [mine, theirs] = pair();
  return { channel: mine, peer: theirs, out: collector(theirs) };
}

test('device session chunked, client at base:1.0: hello replayed, messages re-framed byte for byte, close-session answered locally in order', async (t) => {
  const { session, deviceSide, device } = await setup();
  t.is(session.framing, 'chunked');
  const c = client();
  const served = session.serve(c.channel);
  await c.out.until(/]]>]]>/);
  t.is(c.out.text, HELLO_11 + ']]>]]>', 'the device hello, as the device sent it');
  const rpc = `<rpc message-id="1" xmlns="${NS}"><get-config><source><running/></source></get-config></rpc>`;
  const close = `<rpc message-id="2" xmlns="${NS}"><close-session/></rpc>`;
  // Split anywhere: the client's bytes arrive in odd pieces.
  const bytes = HELLO_10_CLIENT + ']]>]]>' + rpc + ']]>]]>' + close + ']]>]]>';
  for (let i = 0; i < bytes.length; i += 7) c.peer.write(bytes.slice(i, i + 7));
  await device.until(/##\n$/);
  t.regex(device.text.slice(device.text.indexOf(']]>]]>') + 6), /^\n#\d+\n[\s\S]*\n##\n$/, 'rpc re-framed to chunks');
  const payload = device.text.slice(device.text.indexOf(']]>]]>') + 6).replace(/\n#\d+\n|\n##\n/g, '');
  t.is(payload, rpc, 'payload unchanged');
  t.false(device.text.includes('close-session'));
  await new Promise((r) => setTimeout(r, 30));
  t.false(c.out.text.includes('message-id="2"'), 'close-session waits for the reply owed before it');
  const reply = `<rpc-reply message-id="1" xmlns="${NS}"><data/></rpc-reply>`;
  deviceSide.write(`\n#10\n${reply.slice(0, 10)}\n#${reply.length - 10}\n${reply.slice(10)}\n##\n`);
  await c.out.until(/message-id="2"[\s\S]*<ok\/>[\s\S]*]]>]]>$/);
  t.true(c.out.text.includes(reply + ']]>]]>'), 'reply joined into one end-of-message frame');
  t.true(c.out.text.indexOf('message-id="1"') < c.out.text.indexOf('message-id="2"'));
  t.is((await served).result, 'served');
});

test('a second client waits, and gets the session after stale replies are drained and dropped', async (t) => {
  const { session, deviceSide, device, held } = await setup(5);
  const a = client();
  const servedA = session.serve(a.channel);
  await a.out.until(/]]>]]>/);
  a.peer.write(HELLO_10_CLIENT + ']]>]]>' + `<rpc message-id="s1" xmlns="${NS}"><get/></rpc>]]>]]>`);
  await device.until(/s1/);
  const b = client();
  const servedB = session.serve(b.channel);
  await new Promise((r) => setTimeout(r, 20));
  t.is(b.out.text, '', 'b waits while a holds the session');
  t.is((await held.waiting.get()).values.find((v) => v.labels.transport === 'tls')?.value, 1, 'the waiting client is visible');
  a.channel.destroy(); // a leaves with its reply outstanding
  t.is((await servedA).result, 'served');
  await new Promise((r) => setTimeout(r, 20));
  t.is(b.out.text, '', 'b is not lent the session before the stale reply is drained');
  const stale = `<rpc-reply message-id="s1" xmlns="${NS}"><data/></rpc-reply>`;
  deviceSide.write(`\n#${stale.length}\n${stale}\n##\n`);
  await b.out.until(/]]>]]>/);
  t.false(b.out.text.includes('s1'), 'the stale reply was dropped');
  const dropped = (await held.droppedReplies.get()).values.find((v) => v.labels.transport === 'tls')?.value;
  t.is(dropped, 1);
  b.channel.destroy();
  t.is((await servedB).result, 'served');
});

test('without waitForDevice a second client is refused as busy at once', async (t) => {
  const { session } = await setup(0);
  const a = client();
  void session.serve(a.channel);
  const r = await session.serve(client().channel);
  t.is(r.result, 'busy');
  t.regex(r.reason, /busy/);
});

test('a device whose first message is not a NETCONF hello is refused with that reason', async (t) => {
  const [gwSide, deviceSide] = pair();
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const session = new HeldSession(
    gwSide,
    { transport: 'tls', metrics, held: new HeldSessionMetrics(metrics.registry), logger: createLogger('silent'), onFatal: () => {} },
    { maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16, helloTimeout: 5, waitForDevice: 0, keepaliveInterval: 0, drainTimeout: 5, maxBase: '1.1' },
  );
  const started = session.start();
  deviceSide.write('<html>hello</html>]]>]]>');
  const err = await t.throwsAsync(started);
  t.is((err as { code?: string }).code, 'GW_ERR_NOT_NETCONF');
  t.regex(err!.message, /did not send a NETCONF <hello>/);
});

test('a client that leaves holding the candidate lock has it discarded and unlocked before the next client is served', async (t) => {
  const { session, deviceSide, device } = await setup(5);
  const a = client();
  const servedA = session.serve(a.channel);
  await a.out.until(/]]>]]>/);
  a.peer.write(HELLO_10_CLIENT + ']]>]]>' + `<rpc message-id="L" xmlns="${NS}"><lock><target><candidate/></target></lock></rpc>]]>]]>`);
  await device.until(/<lock>/);
  const ok = (id: string) => `<rpc-reply message-id="${id}" xmlns="${NS}"><ok/></rpc-reply>`;
  deviceSide.write(chunk(ok('L')));
  await a.out.until(/message-id="L"/);
  const before = device.text.length;
  a.channel.destroy();
  t.is((await servedA).result, 'served');
  await device.until(/release-2/);
  const cleanup = device.text.slice(before).replace(/\n#\d+\n|\n##\n/g, '');
  t.is(
    cleanup,
    `<rpc message-id="callhome-gateway-release-1" xmlns="${NS}"><discard-changes/></rpc>` +
      `<rpc message-id="callhome-gateway-release-2" xmlns="${NS}"><unlock><target><candidate/></target></unlock></rpc>`,
  );
  const b = client();
  const servedB = session.serve(b.channel);
  await b.out.until(/]]>]]>/);
  b.peer.write(HELLO_10_CLIENT + ']]>]]>');
  deviceSide.write(chunk(ok('callhome-gateway-release-1')) + chunk(ok('callhome-gateway-release-2')));
  await new Promise((r) => setTimeout(r, 30));
  t.false(b.out.text.includes('release'), "the clean-up's replies reach no client");
  b.channel.destroy();
  t.is((await servedB).result, 'served');
});

test('a client that unlocked before leaving leaves nothing to clean up', async (t) => {
  const { session, deviceSide, device } = await setup(5);
  const a = client();
  const servedA = session.serve(a.channel);
  await a.out.until(/]]>]]>/);
  const ok = (id: string) => chunk(`<rpc-reply message-id="${id}" xmlns="${NS}"><ok/></rpc-reply>`);
  a.peer.write(HELLO_10_CLIENT + ']]>]]>' + `<rpc message-id="L" xmlns="${NS}"><lock><target><running/></target></lock></rpc>]]>]]>`);
  await device.until(/<lock>/);
  deviceSide.write(ok('L'));
  a.peer.write(`<rpc message-id="U" xmlns="${NS}"><unlock><target><running/></target></unlock></rpc>]]>]]>`);
  await device.until(/<unlock>/);
  deviceSide.write(ok('U'));
  await a.out.until(/message-id="U"/);
  a.channel.destroy();
  await servedA;
  await new Promise((r) => setTimeout(r, 30));
  t.false(device.text.includes('callhome-gateway-release'));
});
