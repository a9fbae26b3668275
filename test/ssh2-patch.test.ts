// patches/ssh2+*.patch (docs/SSH2_PATCH.md) is applied, and ssh2 with it still carries every
// byte in order: over TCP (where written packet buffers are recycled) and over a plain stream
// transport that keeps the very chunks it is given (where they must never be recycled),
// with both AEAD ciphers the gateway negotiates, in both directions, with several channels
// writing at once.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { sshPacketPathPatched } from '../src/gateway.js';
import { generateUsableEd25519 } from '../src/northbound/hostkey.js';

const require = createRequire(import.meta.url);
const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] as const;
const hostKey = generateUsableEd25519('ssh2-patch test');

test('the ssh2 packet-path patch is applied to node_modules/ssh2 (npm ci postinstall)', (t) => {
  t.true(sshPacketPathPatched(), 'run npm ci (its postinstall runs patch-package) or npx patch-package');
  const crypto = readFileSync(require.resolve('ssh2/lib/protocol/crypto.js'), 'utf8');
  t.regex(crypto, /function allocPooledPacket\(/);
  t.regex(crypto, /function randomPadding\(/);
  t.notRegex(crypto, /randomFillSync\(packet, /, 'padding still drawn per packet');
});

/** Two Duplex ends that hand each written chunk object to the other side and call back at once. */
function chunkKeepingPair(): [Duplex, Duplex] {
  const make = (): Duplex & { peer?: Duplex } =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        (this as Duplex & { peer: Duplex }).peer.push(chunk);
        cb();
      },
      final(cb) {
        (this as Duplex & { peer: Duplex }).peer.push(null);
        cb();
      },
    });
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

interface Transfer {
  sent: string;
  received: string;
  bytes: number;
}

/**
 * Opens `channels` exec channels from a client to a server over `transport`; on each, the
 * server streams `size` random bytes to the client and the client streams `size` random
 * bytes to the server, all at once. Resolves with the digests of what each channel end sent and got.
 */
async function run(transport: 'tcp' | 'stream', cipher: string, size: number, channels: number): Promise<{ clientSide: Transfer[]; serverSide: Transfer[] }> {
  const results: Promise<Transfer>[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey.private], algorithms: { cipher: [cipher as ssh2.CipherAlgorithm] } }, (conn) => {
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () =>
      conn.on('session', (accept) =>
        accept().on('exec', (acceptExec) => {
          const ch = acceptExec();
          results.push(pump(ch, ch, size, () => (ch.exit(0), ch.end())));
        }),
      ),
    );
  });
  const client = new ssh2.Client();
  // listening before connect(): over an in-memory transport the handshake may finish inside it
  const ready = new Promise<void>((resolve, reject) => client.once('ready', resolve).once('error', reject));
  let tcp: net.Server | undefined;
  if (transport === 'tcp') {
    tcp = net.createServer((s) => server.injectSocket(s));
    await new Promise<void>((r) => tcp!.listen(0, '127.0.0.1', r));
    client.connect({ host: '127.0.0.1', port: (tcp.address() as net.AddressInfo).port, username: 'u', algorithms: { cipher: [cipher as ssh2.CipherAlgorithm] } });
  } else {
    const [a, b] = chunkKeepingPair();
    server.injectSocket(b as unknown as net.Socket);
    client.connect({ sock: a as unknown as net.Socket, username: 'u', algorithms: { cipher: [cipher as ssh2.CipherAlgorithm] } });
  }
  try {
    await ready;
    const clientSide = await Promise.all(
      Array.from({ length: channels }, () =>
        new Promise<ClientChannel>((resolve, reject) => client.exec('x', (err, ch) => (err ? reject(err) : resolve(ch)))).then((ch) => pump(ch, ch, size, () => ch.end())),
      ),
    );
    const serverSide = await Promise.all(results);
    return { clientSide, serverSide };
  } finally {
    client.end();
    tcp?.close();
  }
}

/** Writes `size` random bytes (with back-pressure) while hashing everything read; ends when both are done. */
function pump(out: ClientChannel | ServerChannel, input: ClientChannel | ServerChannel, size: number, end: () => void): Promise<Transfer> {
  return new Promise((resolve) => {
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let bytes = 0;
    let readDone = false;
    let writeDone = false;
    // ends its side only when it has also read everything: a server channel's end() closes it
    const finish = () => {
      if (!readDone || !writeDone) return;
      end();
      resolve({ sent: sent.digest('hex'), received: received.digest('hex'), bytes });
    };
    input.on('data', (d: Buffer) => {
      received.update(d);
      bytes += d.length;
      // the peer sends exactly `size` bytes
      if (bytes === size) {
        readDone = true;
        finish();
      }
    });
    let left = size;
    const write = (): void => {
      while (left > 0) {
        // odd sizes, so packets and reads never line up the same way twice
        const chunk = randomBytes(Math.min(left, 1 + Math.floor(Math.random() * 200_000)));
        left -= chunk.length;
        sent.update(chunk);
        if (!out.write(chunk)) return void out.once('drain', write);
      }
      writeDone = true;
      finish();
    };
    write();
  });
}

for (const transport of ['tcp', 'stream'] as const) {
  for (const cipher of CIPHERS) {
    test(`every byte arrives in order over ${transport === 'tcp' ? 'TCP' : 'a chunk-keeping stream'}, ${cipher}, both directions, 3 channels at once`, async (t) => {
      t.timeout(60_000);
      const size = 12 * 1024 * 1024 + 12345;
      const { clientSide, serverSide } = await run(transport, cipher, size, 3);
      t.is(clientSide.length, 3);
      t.is(serverSide.length, 3);
      for (const x of [...clientSide, ...serverSide]) t.is(x.bytes, size);
      const sorted = (xs: string[]) => [...xs].sort();
      t.deepEqual(sorted(serverSide.map((x) => x.received)), sorted(clientSide.map((x) => x.sent)), 'client to server');
      t.deepEqual(sorted(clientSide.map((x) => x.received)), sorted(serverSide.map((x) => x.sent)), 'server to client');
    });
  }
}
