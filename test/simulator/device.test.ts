// Simulated devices over real loopback sockets: the test plays the gateway (accepts the
// device's TCP connection and runs an ssh2 Client on it), as RFC 8071 has it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { SimulatedDevice } from '../../src/simulator/device.js';
import { SshHost } from '../../src/simulator/ssh-host.js';
import { BASE_10, BASE_11, BASE_NS, NetconfClient, TestGateway, errorTag, openNetconf, withTimeout, type GatewayConnection } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const SIM = 'urn:callhome-gateway:simulator';

async function sshKeygenFingerprint(publicKeyLine: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sim-key-'));
  try {
    const file = join(dir, 'key.pub');
    await writeFile(file, `${publicKeyLine}\n`);
    const { stdout } = await run('ssh-keygen', ['-lf', file]);
    return stdout.split(' ')[1]!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A device connected to a fresh test gateway, logged in. */
async function connected(
  options: ConstructorParameters<typeof SimulatedDevice>[0] = {},
  gwOptions = {},
): Promise<{ gw: TestGateway; dev: SimulatedDevice; conn: GatewayConnection }> {
  const gw = await TestGateway.start(gwOptions);
  const dev = new SimulatedDevice({ id: 'sim-00001', ...options });
  const connecting = dev.connect('127.0.0.1', gw.port);
  const conn = await gw.nextConnection();
  await withTimeout(Promise.all([conn.ready, connecting]), 10_000, 'login');
  return { gw, dev, conn };
}

async function netconf(conn: GatewayConnection, caps = [BASE_10, BASE_11]): Promise<{ nc: NetconfClient; serverHello: string }> {
  const nc = new NetconfClient(await openNetconf(conn));
  const serverHello = await nc.hello(caps);
  return { nc, serverHello };
}

test('host keys: each device on a shared SSH host presents its own, fingerprinted as ssh-keygen does', async (t) => {
  const gw = await TestGateway.start();
  const host = new SshHost();
  const devs = [1, 2, 3].map((i) => new SimulatedDevice({ id: `sim-0000${i}`, sshHost: host }));
  const rsa = new SimulatedDevice({ id: 'rsa-1', hostKey: ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }).private });
  const all = [...devs, rsa];
  t.teardown(async () => {
    await Promise.all(all.map((d) => d.close()));
    await gw.close();
  });
  await Promise.all(all.map((d) => d.connect('127.0.0.1', gw.port)));
  const seen = gw.connections.map((c) => c.fingerprint).sort();
  t.deepEqual(seen, all.map((d) => d.fingerprint).sort());
  t.is(new Set(seen).size, 4);
  for (const d of all) {
    t.regex(d.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    t.is(await sshKeygenFingerprint(d.publicKeyLine), d.fingerprint);
  }
  t.true(rsa.publicKeyLine.startsWith('ssh-rsa '));
  t.true(devs[0]!.publicKeyLine.startsWith('ssh-ed25519 '));
  t.throws(() => host.inject(null as never, (rsa as unknown as { key: never }).key, () => undefined), { message: /serves ssh-ed25519 keys/ });
});

test('base:1.0-only client: end-of-message framing throughout', async (t) => {
  const { gw, dev, conn } = await connected();
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const { nc, serverHello } = await netconf(conn, [BASE_10]);
  for (const cap of [BASE_10, BASE_11, 'urn:ietf:params:netconf:capability:candidate:1.0', 'urn:ietf:params:netconf:capability:validate:1.1']) {
    t.true(serverHello.includes(`<capability>${cap}</capability>`), cap);
  }
  t.regex(serverHello, /<session-id>[1-9][0-9]*<\/session-id>/);
  t.is(nc.framing, 'eom');
  nc.send(`<rpc message-id="1" xmlns="${BASE_NS}"><get-config><source><running/></source></get-config></rpc>`);
  const reply = await nc.read();
  t.deepEqual(reply.chunks, []);
  t.regex(reply.body.toString(), /^<rpc-reply message-id="1" xmlns="[^"]+"><data><system xmlns="urn:callhome-gateway:simulator"><hostname>sim-00001<\/hostname>/);
});

test('base:1.1 client: chunked framing; small get-config and a 20 MiB reply streamed', async (t) => {
  const size = 20 * 1024 * 1024;
  const { gw, dev, conn } = await connected({ replySize: size });
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const { nc } = await netconf(conn);
  t.is(nc.framing, 'chunked');
  const small = await nc.rpc(`<get-config><source><running/></source><filter><system xmlns="${SIM}"/></filter></get-config>`);
  t.regex(small, /<hostname>sim-00001<\/hostname>/);
  t.true(small.length < 1000);

  const started = Date.now();
  nc.send(`<rpc message-id="big" xmlns="${BASE_NS}"><get-config><source><running/></source></get-config></rpc>`);
  const reply = await nc.read(30_000);
  t.log(`20 MiB reply in ${Date.now() - started} ms, ${reply.chunks.length} chunks`);
  t.is(reply.body.length, size);
  t.is(
    reply.chunks.reduce((a, b) => a + b, 0),
    size,
  );
  t.true(reply.chunks.length >= size / (64 * 1024));
  t.true(reply.chunks.every((c) => c > 0 && c <= 64 * 1024));
  const text = reply.body.toString();
  t.true(text.startsWith(`<rpc-reply message-id="big" xmlns="${BASE_NS}"><data>`));
  t.true(text.endsWith('</bulk></data></rpc-reply>'));
  t.true((text.match(/<item>/g)?.length ?? 0) > size / 70);
  // the session goes on
  t.regex(await nc.rpc('<get><filter><simulator-state xmlns="urn:callhome-gateway:simulator"/></filter></get>'), /<sessions>1<\/sessions>/);
});

test('edit-config on the candidate, commit: visible in running', async (t) => {
  const { gw, dev, conn } = await connected();
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const { nc } = await netconf(conn);
  const cfg = `<interfaces xmlns="${SIM}"><interface><name>ge-0/0/1</name><description>to core</description></interface></interfaces>`;
  t.regex(await nc.rpc(`<edit-config><target><candidate/></target><config>${cfg}</config></edit-config>`), /<ok\/>/);
  const running = (): Promise<string> => nc.rpc('<get-config><source><running/></source></get-config>');
  t.false((await running()).includes('ge-0/0/1'));
  t.regex(await nc.rpc('<commit/>'), /<ok\/>/);
  t.regex(await running(), /<interface><name>ge-0\/0\/1<\/name><description>to core<\/description><\/interface>/);
  // a second channel (a second client through the gateway) sees the same datastore
  const other = await netconf(conn);
  t.regex(await other.nc.rpc('<get-config><source><running/></source></get-config>'), /ge-0\/0\/1/);
});

test('locks conflict across two channels of one connection; each channel has its own session', async (t) => {
  const { gw, dev, conn } = await connected();
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const a = await netconf(conn);
  const b = await netconf(conn);
  const idA = /<session-id>(\d+)</.exec(a.serverHello)![1];
  const idB = /<session-id>(\d+)</.exec(b.serverHello)![1];
  t.not(idA, idB);
  t.is(dev.sessions, 2);
  t.regex(await a.nc.rpc('<lock><target><running/></target></lock>'), /<ok\/>/);
  const denied = await b.nc.rpc('<lock><target><running/></target></lock>');
  t.is(errorTag(denied), 'lock-denied');
  t.true(denied.includes(`<session-id>${idA}</session-id>`));
  t.is(errorTag(await b.nc.rpc(`<edit-config><target><running/></target><config><system xmlns="${SIM}"><location>x</location></system></config></edit-config>`)), 'in-use');
  t.is(errorTag(await b.nc.rpc('<commit/>')), 'in-use');
  t.regex(await a.nc.rpc('<unlock><target><running/></target></unlock>'), /<ok\/>/);
  t.regex(await b.nc.rpc('<lock><target><running/></target></lock>'), /<ok\/>/);
  // closing the channel releases the lock
  b.nc.channel.end();
  await new Promise((r) => setTimeout(r, 200));
  t.regex(await a.nc.rpc('<lock><target><running/></target></lock>'), /<ok\/>/);
});

test('unknown rpc: rpc-error, message-id and attributes echoed; close-session: ok, then the channel closes', async (t) => {
  const { gw, dev, conn } = await connected();
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const { nc } = await netconf(conn);
  const reply = await nc.rpc('<reboot-everything/>', ' xmlns:x="urn:example" x:trace="t-1"');
  t.regex(reply, /^<rpc-reply message-id="\d+" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:x="urn:example" x:trace="t-1"><rpc-error>/);
  t.is(errorTag(reply), 'operation-not-supported');
  t.regex(reply, /<error-type>protocol<\/error-type>.*<error-severity>error<\/error-severity>/);
  t.regex(await nc.rpc('<lock><target><candidate/></target></lock>'), /<ok\/>/);
  const closedAt = new Promise((r) => nc.channel.once('close', r));
  t.regex(await nc.rpc('<close-session/>'), /<ok\/>/);
  await withTimeout(closedAt, 5000, 'channel close');
  t.is(dev.datastore.lockHolder('candidate'), 0);
  // the SSH connection stays; a new session works
  const again = await netconf(conn);
  t.regex(await again.nc.rpc('<get/>'), /<data>/);
});

test('only the netconf subsystem is served', async (t) => {
  const { gw, dev, conn } = await connected();
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const sftp = await new Promise<Error | undefined>((resolve) => conn.client.subsys('sftp', (err) => resolve(err)));
  t.truthy(sftp);
  const exec = await new Promise<Error | undefined>((resolve) => conn.client.exec('id', (err) => resolve(err)));
  t.truthy(exec);
  const { nc } = await netconf(conn);
  t.regex(await nc.rpc('<get/>'), /<data>/);
});

test('wrong password: refused, and the device reports the failed attempt', async (t) => {
  const gw = await TestGateway.start({ password: 'wrong' });
  const dev = new SimulatedDevice({ id: 'sim-00001', password: 'right' });
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const failures: Error[] = [];
  dev.on('attempt-failed', (e) => failures.push(e));
  const connecting = dev.connect('127.0.0.1', gw.port);
  const conn = await gw.nextConnection();
  await t.throwsAsync(conn.ready, { message: /authentication methods failed/ });
  await t.throwsAsync(withTimeout(connecting, 10_000, 'attempt end'), { message: /authentication failed/ });
  t.is(failures.length, 1);
  t.is(dev.state, 'disconnected');
});

test('keepalives are answered both ways', async (t) => {
  // Each side resets its probe timer on any packet, so each direction is tried on its own.
  for (const [device, gateway] of [
    [0, 50],
    [0.05, 0],
  ] as const) {
    const { gw, dev, conn } = await connected({ sshHost: new SshHost({ keepaliveInterval: device, keepaliveCountMax: 2 }) }, { keepaliveInterval: gateway });
    let gone = false;
    dev.on('disconnected', () => (gone = true));
    conn.client.on('close', () => (gone = true));
    // ten probe intervals: well past the point where either side gives up on a silent peer
    await new Promise((r) => setTimeout(r, 500));
    t.false(gone, `device ${device} s, gateway ${gateway} ms`);
    t.is(dev.state, 'connected');
    await dev.close();
    await gw.close();
  }
});

test('persistent: reconnects with back-off after the gateway drops the connection', async (t) => {
  const { gw, dev, conn } = await connected({ persistent: true, reconnectDelay: { initial: 0.05, max: 0.2 } });
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const delays: number[] = [];
  dev.on('reconnecting', (ms) => delays.push(ms));
  const next = gw.nextConnection();
  conn.socket.destroy();
  const again = await next;
  await withTimeout(again.ready, 10_000, 'second login');
  t.is(again.fingerprint, dev.fingerprint);
  t.is(dev.reconnects, 1);
  t.true(delays.length === 1 && delays[0]! >= 25 && delays[0]! <= 50, `delay ${delays[0]}`);
  await new Promise((r) => setTimeout(r, 20));
  t.is(dev.state, 'connected');
  // the datastore survived the reconnect, as a device's configuration would
  const { nc } = await netconf(again);
  t.regex(await nc.rpc('<get-config><source><running/></source></get-config>'), /sim-00001/);
  // and close() ends it for good
  await dev.close();
  await new Promise((r) => setTimeout(r, 150));
  t.is(gw.connections.length, 2);
  t.is(dev.state, 'closed');
});

test('persistent: keeps retrying while the gateway turns it away, then gets in', async (t) => {
  const gw = await TestGateway.start();
  gw.refuse = true;
  const dev = new SimulatedDevice({ id: 'sim-00001', persistent: true, reconnectDelay: { initial: 0.02, max: 0.05 } });
  t.teardown(async () => {
    await dev.close();
    await gw.close();
  });
  const failures: Error[] = [];
  dev.on('attempt-failed', (e) => failures.push(e));
  const connecting = dev.connect('127.0.0.1', gw.port);
  await waitFor('three failed attempts', () => failures.length >= 3, { intervalMs: 10 }).catch(() => undefined);
  t.true(failures.length >= 3, `${failures.length} failures`);
  t.regex(failures[0]!.message, /closed before login|ECONNRESET/);
  t.is(dev.state === 'waiting' || dev.state === 'connecting', true);
  gw.refuse = false;
  await withTimeout(connecting, 10_000, 'login after retries');
  t.true(dev.reconnects >= 3);
  t.is(gw.connections.length, 1);
  t.is(dev.state, 'connected');
});
