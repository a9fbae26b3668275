// src/ssh/internals.ts against the installed ssh2, over a real TCP connection: every private
// field it reads or writes is still where it looks, so an ssh2 upgrade that moves one fails
// here rather than silently in production. And no other file in src/ reaches into ssh2.
import test from 'ava';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel, Connection, ServerChannel } from 'ssh2';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import {
  channelStderr,
  connectionSocket,
  exitStatusSeen,
  incomingWindow,
  interceptPush,
  outgoingWindow,
  sendExitStatusRaw,
  setConnectionHostKey,
  sshNativeCryptoAvailable,
  sshPacketPathPatched,
  strictKexNegotiated,
} from '../../src/ssh/internals.js';

const templateKey = generateUsableEd25519('internals template');
const deviceKey = generateUsableEd25519('internals device');

interface Pair {
  conn: Connection;
  socket: net.Socket;
  client: ssh2.Client;
  hostKey: Buffer;
  serverChannel: ServerChannel;
  clientChannel: ClientChannel;
  close(): void;
}

/** An ssh2 Server and Client over loopback TCP with one exec channel open; the server presents `deviceKey` via setConnectionHostKey. */
async function pair(t: { teardown(fn: () => void): void }): Promise<Pair & { hostKeySet: boolean }> {
  let hostKeySet = false;
  let accepted: net.Socket | undefined;
  const server = new ssh2.Server({ hostKeys: [templateKey.private] });
  const conns = new Promise<{ conn: Connection; serverChannel: ServerChannel }>((resolve) =>
    server.on('connection', (conn) => {
      hostKeySet = setConnectionHostKey(conn, ssh2.utils.parseKey(deviceKey.private) as ssh2.ParsedKey);
      conn.on('error', () => {});
      conn.on('authentication', (ctx) => ctx.accept());
      conn.on('ready', () => conn.on('session', (accept) => accept().on('exec', (acceptExec) => resolve({ conn, serverChannel: acceptExec() }))));
    }),
  );
  const tcp = net.createServer((s) => {
    accepted = s;
    server.injectSocket(s);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const client = new ssh2.Client();
  let hostKey: Buffer = Buffer.alloc(0);
  const ready = new Promise<void>((resolve, reject) => client.once('ready', resolve).once('error', reject));
  client.connect({
    host: '127.0.0.1',
    port: (tcp.address() as net.AddressInfo).port,
    username: 'u',
    hostVerifier: (key: Buffer) => {
      hostKey = key;
      return true;
    },
  });
  await ready;
  const clientChannel = await new Promise<ClientChannel>((resolve, reject) => client.exec('x', (err, ch) => (err ? reject(err) : resolve(ch))));
  const { conn, serverChannel } = await conns;
  const close = () => {
    client.end();
    tcp.close();
  };
  t.teardown(close);
  return { conn, socket: accepted!, client, hostKey, serverChannel, clientChannel, close, hostKeySet };
}

test('the fields internals.ts relies on are where it looks in the installed ssh2', async (t) => {
  const p = await pair(t);
  t.true(p.hostKeySet, 'setConnectionHostKey found _protocol._hostKeys');
  const presented = ssh2.utils.parseKey(p.hostKey) as ssh2.ParsedKey;
  t.is(
    presented.getPublicSSH().toString('base64'),
    (ssh2.utils.parseKey(deviceKey.private) as ssh2.ParsedKey).getPublicSSH().toString('base64'),
    'the per-connection key was presented, not the template',
  );
  t.is(connectionSocket(p.conn), p.socket, 'connectionSocket is the accepted TCP socket');
  t.true(strictKexNegotiated(p.conn), 'ssh2 to ssh2 negotiates strict kex, seen on the server');
  t.true(strictKexNegotiated(p.client), 'and on the client');
  t.false(strictKexNegotiated({}));
  t.true(incomingWindow(p.clientChannel)! > 0);
  t.true(incomingWindow(p.serverChannel)! > 0);
  t.is(incomingWindow(new net.Socket()), undefined, 'not a channel');
  t.true(outgoingWindow(p.serverChannel) > 0);
  t.is(channelStderr(p.clientChannel) !== undefined, true);

  // Data reaches a channel through push(): the interceptor sees it before any 'data' listener.
  const seen: string[] = [];
  const restore = interceptPush(p.clientChannel, (push, chunk, encoding) => {
    if (chunk !== null) seen.push(String(chunk));
    return push(chunk, encoding);
  });
  t.truthy(restore);
  const got = new Promise<string>((resolve) => p.clientChannel.once('data', (d: Buffer) => resolve(d.toString())));
  p.serverChannel.write('hello');
  t.is(await got, 'hello');
  t.deepEqual(seen, ['hello']);
  restore!();

  // exit-status below exit(): the client sees it, and exitStatusSeen reads it back.
  t.false(exitStatusSeen(p.clientChannel));
  const exit = new Promise<number>((resolve) => p.clientChannel.once('exit', (code: number) => resolve(code)));
  sendExitStatusRaw(p.serverChannel, 7);
  t.is(await exit, 7);
  t.true(exitStatusSeen(p.clientChannel));
});

test('the ssh2/lib modules internals.ts reads are there (native crypto binding, packet-path patch)', (t) => {
  t.true(sshPacketPathPatched());
  t.is(typeof sshNativeCryptoAvailable(), 'boolean');
});

test('no file in src/ but ssh/internals.ts reaches into ssh2 private fields or modules', (t) => {
  const root = path.resolve('src');
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (file.endsWith('.ts') && !file.endsWith(path.join('ssh', 'internals.ts'))) {
        const text = readFileSync(file, 'utf8');
        if (/\._(sock|protocol|chanMgr|client|exit|hostKeys|strictMode)\b|[\w)\]]\.(incoming|outgoing)\b|ssh2\/lib\//.test(text)) offenders.push(path.relative(root, file));
      }
    }
  };
  walk(root);
  t.deepEqual(offenders, []);
});
