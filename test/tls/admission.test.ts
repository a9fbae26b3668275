// The TLS call-home listener shares the call-home admission limits: a source over its
// per-source cap is dropped at accept and counted with transport="tls", and a stranger whose
// TLS handshake fails counts against its source like one on the SSH listener.
import test from 'ava';
import net from 'node:net';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

function connectSilently(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve({ socket, closed }));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {});
    socket.once('error', reject);
    socket.resume(); // read and drop the gateway's ClientHello, so its close is seen
  });
}

test('a second TLS call home from one address over perSourceMaxStartups=1 is refused as rejected_limit', async (t) => {
  const gw = await startGateway({ env: { CHGW_CALLHOME_PERSOURCEMAXSTARTUPS: '1' } });
  t.teardown(() => gw.close());
  const port = gw.gateway.addresses().callhomeTls;
  t.true(port > 0);

  // The first one holds its startup slot: it never answers the gateway's ClientHello.
  const first = await connectSilently(port);
  t.teardown(() => first.socket.destroy());
  const second = await connectSilently(port);
  await second.closed; // dropped at accept, without waiting for any deadline
  t.false(first.socket.destroyed);
  t.is(await gw.metric('callhome_connections_total{transport="tls",result="rejected_limit"}'), 1);

  // Once the first one goes away its slot is free again: the next is admitted, and garbage
  // instead of a TLS handshake ends it with handshake_failed.
  first.socket.destroy();
  await first.closed;
  // The gateway sees the first one's handshake end (and its slot freed) a moment later.
  await waitFor('a failed TLS handshake', async () => (await gw.metric('callhome_connections_total{transport="tls",result="handshake_failed"}')) >= 1);
  const third = await connectSilently(port);
  third.socket.write('this is not TLS\r\n\r\n');
  await third.closed;
  t.is(await gw.metric('callhome_connections_total{transport="tls",result="rejected_limit"}'), 1);
  await waitFor('a second failed TLS handshake', async () => (await gw.metric('callhome_connections_total{transport="tls",result="handshake_failed"}')) >= 2);
  t.is(await gw.metric('callhome_connections_total{transport="tls",result="handshake_failed"}'), 2);
});
