// ssh2 #1505: a peer that ignores the SSH channel window. This raw ssh2-level device sends
// CHANNEL_DATA straight through the protocol layer (no window accounting) while the client
// reads nothing; unguarded, the gateway would buffer every byte. With the guard the device
// is cut at the first byte beyond the window and the gateway's memory stays flat.
// #1508 (closing while writes wait for window drops data): a device reply larger than the
// client's window, followed at once by the device closing, still reaches a slow client whole.
import test from 'ava';
import type { ServerChannel } from 'ssh2';
import { managerSession, withGateway } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { NETCONF_HELLO, ScriptedDevice } from '../helpers/ssh-device.js';
import { CLIENT_HELLO_11, connectManager, openNetconf } from '../helpers/ssh-manager.js';

const USERS = 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n';
const mib = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

interface Raw {
  outgoing: { id: number; window: number };
  _client: { _protocol: { channelData(id: number, data: Buffer): void }; _sock: NodeJS.WritableStream & { writableLength: number; destroyed: boolean } };
}

test('a device overrunning the channel window is cut; the gateway does not buffer the excess', async (t) => {
  const TOTAL = 96 * 1024 * 1024;
  let sent = 0;
  let sessions = 0;
  const device = new ScriptedDevice({
    onNetconf: (ch: ServerChannel) => {
      ch.write(NETCONF_HELLO);
      if (++sessions === 1) return; // the gateway's own first session (sessions: multiple: no probe of a second)
      const raw = ch as unknown as Raw;
      // Not a divisor of the 2 MiB window: one packet takes the window below zero (#1505).
      const chunk = Buffer.alloc(30_000, 0x41);
      const blast = () => {
        while (sent < TOTAL && !raw._client._sock.destroyed) {
          raw._client._protocol.channelData(raw.outgoing.id, chunk);
          sent += chunk.length;
          if (raw._client._sock.writableLength > 1024 * 1024) {
            raw._client._sock.once('drain', blast);
            return;
          }
        }
      };
      setTimeout(blast, 200);
    },
  });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device, sessions: 'multiple' }], users: USERS });
  // Heap and Buffer memory (what buffering the excess would grow), not RSS, which also
  // moves with the allocator's and the crypto layer's own churn.
  const held = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const baseline = held();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, held())), 10);

  const s = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = s;
  s.channel.write(CLIENT_HELLO_11);
  s.channel.pause(); // a client that reads nothing: the gateway stops granting the device window
  await gw.waitForLog(/beyond the channel window/, 20_000);
  const sentAtTrip = sent;
  await waitFor('device cut', () => !gw.gateway.registry.get('edge-1'), { timeoutMs: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  clearInterval(sampler);
  client.end();
  t.log(
    `device had sent ${mib(sentAtTrip)} MiB when the guard tripped, ${mib(sent)} MiB in all; heap+buffers baseline ${mib(baseline)} MiB, peak ${mib(peak)} MiB (+${mib(peak - baseline)} MiB)`,
  );
  t.true(sentAtTrip < 16 * 1024 * 1024, 'cut within a few windows, long before the 96 MiB were sent');
  // Unguarded, all 96 MiB would sit in the channel's buffer.
  t.true(peak - baseline < 64 * 1024 * 1024, `memory grew by ${mib(peak - baseline)} MiB`);
  t.is(await gw.metric('callhome_device_disconnects_total{reason="protocol"}'), 1);
  t.true(gw.logs.some((l) => /"code":"GW_ERR_PROTOCOL".*device disconnected: peer sent \d+ bytes beyond the channel window/.test(l)));
});

test('a large reply followed at once by the device closing reaches a slow client whole', async (t) => {
  const SIZE = 6 * 1024 * 1024; // three times ssh2's 2 MiB channel window
  const body = '<rpc-reply message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data>' + 'x'.repeat(SIZE) + '</data></rpc-reply>]]>]]>';
  let sessions = 0;
  const device = new ScriptedDevice({
    onNetconf: (ch: ServerChannel) => {
      ch.write(NETCONF_HELLO);
      if (++sessions === 1) return;
      ch.once('data', () => {
        // reply, then close the channel as soon as ssh2 has taken the last byte: the gateway
        // then holds what the slow client has not taken yet
        ch.end(body, () => ch.close());
      });
    },
  });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device, sessions: 'multiple' }], users: USERS });
  const s = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = s;
  s.channel.write(
    '<?xml version="1.0"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>',
  );
  s.channel.write('<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>]]>]]>');
  // A slow reader: take the data in small bites with pauses well past the 2 s drain time.
  s.channel.pause();
  s.channel.removeAllListeners('data');
  const parts: Buffer[] = [s.received()];
  let got = parts[0]!.length;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      let c: Buffer | null;
      while ((c = s.channel.read(256 * 1024) as Buffer | null)) {
        got += c.length;
        parts.push(c);
      }
      if (got >= NETCONF_HELLO.length + body.length || Date.now() - started > 30_000) resolve();
      else setTimeout(tick, 700);
    };
    s.channel.once('close', () => setTimeout(resolve, 50));
    setTimeout(tick, 700);
  });
  client.end();
  t.log(`slow client received ${got} of ${NETCONF_HELLO.length + body.length} bytes in ${Date.now() - started} ms`);
  const all = Buffer.concat(parts).toString();
  t.log(`head ${JSON.stringify(all.slice(0, 40))} tail ${JSON.stringify(all.slice(-40))}`);
  t.is(got, NETCONF_HELLO.length + body.length, 'every byte of the reply reached the client');
});

test('a client overrunning the channel window is cut; its device connection and other sessions are unharmed', async (t) => {
  let sessions = 0;
  const device = new ScriptedDevice({
    onNetconf: (ch: ServerChannel) => {
      ch.write(NETCONF_HELLO);
      if (++sessions === 2) ch.pause(); // a device that reads nothing from this client
    },
  });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device, sessions: 'multiple' }], users: USERS });
  const s = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = s;
  await s.waitFor(']]>]]>');
  const raw = s.channel as unknown as Raw;
  const chunk = Buffer.alloc(30_000, 0x20); // whitespace: valid between messages, so only the window is wrong
  let sent = 0;
  const blast = () => {
    while (sent < 64 * 1024 * 1024 && !raw._client._sock.destroyed) {
      raw._client._protocol.channelData(raw.outgoing.id, chunk);
      sent += chunk.length;
      if (raw._client._sock.writableLength > 1024 * 1024) {
        raw._client._sock.once('drain', blast);
        return;
      }
    }
  };
  blast();
  await gw.waitForLog(/client connection dropped: peer sent \d+ bytes beyond the channel window/, 20_000);
  t.log(`client had sent ${mib(sent)} MiB when it was cut`);
  t.true(sent < 32 * 1024 * 1024);
  t.truthy(gw.gateway.registry.get('edge-1'), 'the device connection is unharmed');
  const other = await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' });
  const s2 = await openNetconf(other);
  await s2.waitFor(']]>]]>');
  t.pass('another client session works');
  other.end();
  client.end();
});
