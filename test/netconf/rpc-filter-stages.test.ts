// The read-only filter as splice stages: refusals go out toward the client, and a client
// that sends refused requests without reading the answers is stopped (memory stays bounded).
import test from 'ava';
import { Writable } from 'node:stream';
import { readOnlyAllows } from '../../src/netconf/read-only.js';
import { RpcFilter } from '../../src/netconf/rpc-filter.js';
import { filterStages } from '../../src/splice/filter-stages.js';
import { CLIENT_HELLO_11, DEVICE_HELLO_11, NS, encode, eomEncode } from './fixtures.js';

test('a client that does not read its refusals stops being read; reading them lets it go on', async (t) => {
  const filter = new RpcFilter({ allows: readOnlyAllows, maxMessageBytes: 1 << 20, maxHelloBytes: 1 << 16 });
  const { toDevice, toClient } = filterStages(filter);
  const toDeviceOut: Buffer[] = [];
  toDevice.on('data', (b: Buffer) => toDeviceOut.push(b));
  // The client's channel: it takes one write and then stalls until released.
  let release: (() => void) | undefined;
  let reading = false;
  let delivered = 0;
  const client = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, done) {
      delivered += chunk.length;
      if (reading) done();
      else release = () => done();
    },
  });
  toClient.pipe(client);
  toClient.write(eomEncode([DEVICE_HELLO_11]));
  toDevice.write(eomEncode([CLIENT_HELLO_11]));
  const rpc = encode('chunked', [`<rpc message-id="1" xmlns="${NS}"><commit/></rpc>`]);
  let accepted = 0;
  for (let i = 0; i < 3000; i++) toDevice.write(rpc, () => accepted++);
  await new Promise((r) => setTimeout(r, 100));
  const held = toClient.readableLength;
  t.true(held > 200 * 1024 && held < 600 * 1024, `unread refusals held: ${held} bytes`);
  t.true(accepted < 3000, `the client is no longer read (${accepted} requests taken)`);
  const before = accepted;
  // The client reads again: every request is taken and answered.
  reading = true;
  release?.();
  await new Promise((r) => setTimeout(r, 300));
  t.true(accepted > before, 'reading the refusals lets the requests through again');
  t.true(filter.denied - accepted <= 1, `${filter.denied} refused, ${accepted} taken`);
  t.true(delivered > held);
  t.is(Buffer.concat(toDeviceOut).toString(), eomEncode([CLIENT_HELLO_11]).toString(), 'none of them reached the device');
});
