// Large replies pass through the meter in constant memory: nothing of a message is kept
// beyond its 4 KiB head, whatever its size. Own file, so heap readings are this process's alone.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import test from 'ava';
import { NetconfMeter, type MeterEvents } from '../../src/netconf/meter.js';
import { CLIENT_HELLO_10, CLIENT_HELLO_11, DEVICE_HELLO_10, DEVICE_HELLO_11, NS, encode } from './fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const MiB = 1 << 20;
const READ = 64 << 10;

interface Run {
  messageBytes: number[];
  rpcs: [string, string][];
  maxScannerHeld: number;
  maxPrefix: number;
  growth: number;
}

/**
 * A `get` whose reply carries `total` payload bytes, pushed to the meter as `reads` reads of
 * one reused 64 KiB buffer (as a socket would hand them over).
 */
function bigReply(framing: 'eom' | 'chunked', total: number): Run {
  const run: Run = { messageBytes: [], rpcs: [], maxScannerHeld: 0, maxPrefix: 0, growth: 0 };
  const events: Partial<MeterEvents> = {
    message: (d, n) => d === 'to_client' && run.messageBytes.push(n),
    rpc: (op, _id, _s, result) => run.rpcs.push([op, result]),
  };
  const meter = new NetconfMeter(events, { maxMessageBytes: 8 * 1024 * MiB, maxHelloBytes: 64 << 10 });
  const [dh, ch] = framing === 'chunked' ? [DEVICE_HELLO_11, CLIENT_HELLO_11] : [DEVICE_HELLO_10, CLIENT_HELLO_10];
  meter.observe('to_client', encode('eom', [dh]));
  meter.observe('to_device', encode('eom', [ch]));
  meter.observe('to_device', encode(framing, [`<rpc message-id="big" xmlns="${NS}"><get/></rpc>`]));

  const head = Buffer.from(`<rpc-reply message-id="big" xmlns="${NS}"><data>`);
  const tail = Buffer.from('</data></rpc-reply>');
  const bodyBytes = total - head.length - tail.length;
  // In end-of-message framing every read ends in a partial marker, withheld until the next read.
  const filler = Buffer.alloc(READ, 0x20);
  filler.write('<x>', 0);
  filler.write(']]>]]', READ - 5);
  const reads = Math.floor(bodyBytes / READ);
  const rest = bodyBytes - reads * READ;

  const check = () => {
    const held = meter.held('to_client');
    run.maxScannerHeld = Math.max(run.maxScannerHeld, held.scannerBytes);
    run.maxPrefix = Math.max(run.maxPrefix, held.prefixBytes);
  };

  if (framing === 'chunked') {
    // One chunk header per read, as a device writing 64 KiB at a time would send.
    meter.observe('to_client', Buffer.from(`\n#${head.length}\n`));
    meter.observe('to_client', head);
  } else {
    meter.observe('to_client', head);
  }
  const chunkHeader = Buffer.from(`\n#${READ}\n`);
  let baseline = 0;
  for (let i = 0; i < reads; i++) {
    if (i === 32) baseline = memory(); // after warm-up
    if (framing === 'chunked') meter.observe('to_client', chunkHeader);
    meter.observe('to_client', filler);
    if ((i & 255) === 0) check();
  }
  const growth = memory() - baseline;
  const end = Buffer.concat([
    framing === 'chunked' ? Buffer.from(`\n#${rest + tail.length}\n`) : Buffer.alloc(0),
    Buffer.alloc(rest, 0x20),
    tail,
    Buffer.from(framing === 'chunked' ? '\n##\n' : ']]>]]>'),
  ]);
  meter.observe('to_client', end);
  check();
  run.growth = growth;
  return run;
}

for (const framing of ['eom', 'chunked'] as const) {
  test(`${framing}: a 200 MiB reply in 64 KiB reads is counted exactly, with no memory growth`, (t) => {
    const total = 200 * MiB;
    const run = bigReply(framing, total);
    t.is(run.messageBytes.length, 2, 'the hello and the reply');
    t.is(run.messageBytes[1], total);
    t.deepEqual(run.rpcs, [['get', 'ok']]);
    t.true(run.maxScannerHeld <= 5);
    t.true(run.maxPrefix <= 4096);
    t.log(`heap + array buffers grew by ${(run.growth / MiB).toFixed(2)} MiB`);
    t.true(run.growth < 4 * MiB, `grew by ${run.growth} bytes`);
  });
}

test('chunked: a 5 GiB reply (beyond 32-bit sizes) is counted exactly, with no memory growth', (t) => {
  const total = 5 * 1024 * MiB;
  const run = bigReply('chunked', total);
  t.is(run.messageBytes[1], total);
  t.deepEqual(run.rpcs, [['get', 'ok']]);
  t.log(`heap + array buffers grew by ${(run.growth / MiB).toFixed(2)} MiB`);
  t.true(run.growth < 4 * MiB, `grew by ${run.growth} bytes`);
});
