// The peer stream over real mutual TLS (peer certificates from the gateway's CA): bytes
// arrive unchanged, EOF and the exit status follow the data, and a reader that stops stops
// the writer, so neither side buffers more than socket buffers and a frame or two.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import { FrameType } from '../../src/cluster/peer-frames.js';
import { PeerStream } from '../../src/cluster/peer-stream.js';
import { clientOptions, loadPeerCredentials, peerRefusal, serverOptions, type PeerCredentials } from '../../src/cluster/peer-tls.js';
import { initCertificates, issuePeerFiles } from '../../src/tls/certs.js';

const MiB = 1024 * 1024;

let credentials: PeerCredentials | undefined;
function peerCredentials(): PeerCredentials {
  if (credentials) return credentials;
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-peer-stream-'));
  initCertificates(path.join(dir, 'state'));
  const files = { cert: path.join(dir, 'p.crt'), key: path.join(dir, 'p.key'), ca: path.join(dir, 'ca.crt') };
  issuePeerFiles(path.join(dir, 'state'), files);
  return (credentials = loadPeerCredentials({ cluster: { peer: { caFile: files.ca, certFile: files.cert, keyFile: files.key } } } as never));
}

async function pair(t: ExecutionContext): Promise<{ near: PeerStream; far: PeerStream }> {
  const creds = peerCredentials();
  let far!: PeerStream;
  const accepted = new Promise<void>((resolve) => {
    const server = tls.createServer(serverOptions(creds, 5), (socket) => {
      if (peerRefusal(socket)) throw new Error(`refused: ${peerRefusal(socket)}`);
      far = new PeerStream(socket, FrameType.Open);
      resolve();
    });
    server.listen(0, '127.0.0.1', () => {
      const socket = tls.connect({ ...clientOptions(creds), host: '127.0.0.1', port: (server.address() as AddressInfo).port });
      near = new PeerStream(socket, FrameType.Reply);
      socket.once('secureConnect', () => near.send(FrameType.Open, '{"hi":1}'));
    });
    t.teardown(() => server.close());
  });
  let near!: PeerStream;
  await accepted;
  t.is((await far.first).toString(), '{"hi":1}');
  far.send(FrameType.Reply, '{"ok":true}');
  await near.first;
  t.teardown(() => (near.destroy(), far.destroy()));
  return { near, far };
}

function* random(total: number, chunk: number, hash: ReturnType<typeof createHash>): Generator<Buffer> {
  let seed = 7;
  for (let sent = 0; sent < total; sent += chunk) {
    const b = Buffer.allocUnsafe(Math.min(chunk, total - sent));
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((seed = (seed * 1664525 + 1013904223) >>> 0), Math.min(i, b.length - 4));
    hash.update(b);
    yield b;
  }
}

test('a reader that stops stops the writer; then every byte arrives unchanged', async (t) => {
  const { near, far } = await pair(t);
  const sentHash = createHash('sha256');
  let produced = 0;
  const source = Readable.from(random(64 * MiB, 256 * 1024, sentHash), { objectMode: false, highWaterMark: 64 * 1024 });
  source.on('data', (b: Buffer) => (produced += b.length));
  const writing = pipeline(source, near);
  far.pause(); // nobody reads on the far side
  await new Promise((r) => setTimeout(r, 1500));
  const stalled = produced;
  await new Promise((r) => setTimeout(r, 500));
  t.is(produced, stalled, 'the writer is held back');
  t.log(`${(stalled / MiB).toFixed(2)} MiB left the writer while nobody read`);
  t.true(stalled < 16 * MiB, `only ${(stalled / MiB).toFixed(1)} MiB left the writer while nobody read`);
  t.true(far.readableLength <= 256 * 1024, `far side holds ${far.readableLength} bytes`);
  const receivedHash = createHash('sha256');
  let received = 0;
  far.on('data', (b: Buffer) => {
    received += b.length;
    receivedHash.update(b);
  });
  far.resume();
  await Promise.all([writing, new Promise((r) => far.once('end', r))]);
  t.is(received, 64 * MiB);
  t.is(receivedHash.digest('hex'), sentHash.digest('hex'));
});

test('EOF ends the readable side, the exit status and stderr lines follow, close() closes both', async (t) => {
  const { near, far } = await pair(t);
  const got: string[] = [];
  near.on('data', (b: Buffer) => got.push(b.toString()));
  const events: string[] = [];
  near.on('end', () => events.push('end'));
  near.on('exit', (code: number) => events.push(`exit ${code}`));
  near.on('stderr', (line: string) => events.push(`stderr ${line.trim()}`));
  far.stderr.write('callhome-gateway: device went away\n');
  far.write('<rpc-reply/>]]>]]>');
  far.end();
  await new Promise((r) => far.once('finish', r));
  far.exit(3);
  await new Promise((r) => near.once('exit', r));
  t.is(got.join(''), '<rpc-reply/>]]>]]>');
  await new Promise((r) => (near.readableEnded ? r(undefined) : near.once('end', r)));
  // The order of the frames; 'end' itself is emitted once the reader has taken the data.
  t.deepEqual(
    events.filter((e) => e !== 'end'),
    ['stderr callhome-gateway: device went away', 'exit 3'],
  );
  t.true(events.includes('end'));
  t.is(near.exitCode, 3);
  // Like an SSH channel, a stream closes once what it received has been read.
  far.resume();
  far.close();
  await Promise.all([new Promise((r) => near.once('close', r)), new Promise((r) => far.once('close', r))]);
  t.true(near.destroyed && far.destroyed);
});

test('a frame out of place drops the connection with a protocol error', async (t) => {
  const { near, far } = await pair(t);
  const closed = new Promise((r) => near.once('close', r));
  far.send(FrameType.Open, '{}'); // an Open in the middle of a session
  await closed;
  t.true(near.destroyed);
});
