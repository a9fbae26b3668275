// The fleet and the `simulate` command against a test gateway on loopback.
import test from 'ava';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parse } from 'yaml';
import { Fleet, type FleetProgress } from '../../src/simulator/fleet.js';
import { parseBytes, parseHostPort, runSimulate } from '../../src/simulator/cli.js';
import { NetconfClient, TestGateway, openNetconf } from './helpers.js';

interface Inventory {
  devices: Array<{ id: string; ssh: { hostKeys: string[] }; credentials: { username: string; password: string } }>;
}

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sim-fleet-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    this.emit('text');
    cb();
  }
}

test('200 devices connect; the inventory lists every one with its fingerprint', async (t) => {
  const gw = await TestGateway.start({ username: 'netconf', password: 's3cret' });
  const fleet = new Fleet({ count: 200, username: 'netconf', password: 's3cret' });
  t.teardown(async () => {
    await fleet.close();
    await gw.close();
  });
  const dir = await tempDir(t);
  const file = join(dir, 'devices.yaml');
  await fleet.writeInventory(file);
  t.is((await stat(file)).mode & 0o777, 0o600);

  const progress: FleetProgress[] = [];
  const started = Date.now();
  const summary = await fleet.start('127.0.0.1', gw.port, { rate: 2000, onProgress: (p) => progress.push(p) });
  t.log(`200 devices logged in to in ${Date.now() - started} ms (${summary.handshakesPerSecond.toFixed(0)}/s)`);
  t.is(summary.connected, 200);
  t.is(summary.everConnected, 200);
  t.is(summary.failed, 0);
  t.not(summary.timeToAllConnectedMs, null);
  t.true(progress.length >= 200);
  t.is(progress.at(-1)!.connected, 200);

  const inv = parse(await readFile(file, 'utf8')) as Inventory;
  t.is(inv.devices.length, 200);
  t.deepEqual(
    inv.devices.map((d) => d.id),
    Array.from({ length: 200 }, (_v, i) => `sim-${String(i + 1).padStart(5, '0')}`),
  );
  for (const d of inv.devices) {
    t.deepEqual(d.credentials, { username: 'netconf', password: 's3cret' });
    t.is(d.ssh.hostKeys.length, 1);
  }
  const listed = inv.devices.map((d) => d.ssh.hostKeys[0]).sort();
  const seen = gw.connections.map((c) => c.fingerprint).sort();
  t.deepEqual(listed, seen);
  t.is(new Set(seen).size, 200);

  // any one of them answers NETCONF
  const conn = gw.connections[137]!;
  const nc = new NetconfClient(await openNetconf(conn));
  await nc.hello();
  const id = inv.devices.find((d) => d.ssh.hostKeys[0] === conn.fingerprint)!.id;
  t.true((await nc.rpc('<get-config><source><running/></source></get-config>')).includes(`<hostname>${id}</hostname>`));
});

test('a seed gives the same keys every time; another seed, other keys', (t) => {
  const a = new Fleet({ count: 3, seed: 'lab-1' });
  const b = new Fleet({ count: 3, seed: 'lab-1' });
  const c = new Fleet({ count: 3, seed: 'lab-2' });
  const fp = (f: Fleet): string[] => f.devices.map((d) => d.fingerprint);
  t.deepEqual(fp(a), fp(b));
  t.is(new Set([...fp(a), ...fp(c)]).size, 6);
  t.is(a.inventoryYaml(), b.inventoryYaml());
});

test('simulate: connects, writes the inventory, prints progress and a summary', async (t) => {
  const gw = await TestGateway.start();
  t.teardown(() => gw.close());
  const dir = await tempDir(t);
  const file = join(dir, 'inv.yaml');
  const stdout = new Capture();
  const stderr = new Capture();
  // stop as soon as the summary is out (what Ctrl-C does)
  const stop = new AbortController();
  stdout.on('text', () => {
    if (stdout.text.includes('all connected in')) stop.abort();
  });
  const code = await runSimulate(['--gateway', `127.0.0.1:${gw.port}`, '--count', '5', '--rate', '1000', '--write-inventory', file, '--reply-size', '64K'], {
    stdout,
    stderr,
    signal: stop.signal,
  });
  t.is(code, 0, stderr.text);
  t.regex(stdout.text, /simulate: 5 devices, 5 connected, 0 failed attempts, 0 reconnects; all connected in/);
  t.regex(stdout.text, /5 of 5 devices logged in at least once/);
  t.regex(stderr.text, /simulate: 5\/5 connected/);
  const inv = parse(await readFile(file, 'utf8')) as Inventory;
  t.deepEqual(inv.devices.map((d) => d.ssh.hostKeys[0]).sort(), gw.connections.map((c) => c.fingerprint).sort());
});

test('simulate: exit 1 when devices never get in, exit 2 on bad usage', async (t) => {
  const gw = await TestGateway.start({ password: 'nope' });
  t.teardown(() => gw.close());
  const stdout = new Capture();
  const stderr = new Capture();
  t.is(await runSimulate(['--gateway', `127.0.0.1:${gw.port}`, '--count', '2', '--rate', '1000'], { stdout, stderr }), 1);
  t.regex(stderr.text, /2 of 2 devices never got logged in to/);

  for (const argv of [
    [],
    ['--count', '0', '--gateway', 'h:1'],
    ['--count', '3'],
    ['--count', '3', '--gateway', 'h:1', '--rate', 'fast'],
    ['--count', '3', '--gateway', 'h:1', '--what'],
    ['--count', '1', '--gateway', '::1'],
    ['--inventory-only', '--count', '2'],
  ]) {
    const err = new Capture();
    t.is(await runSimulate(argv, { stdout: new Capture(), stderr: err }), 2, argv.join(' '));
    t.is(err.text.trim().split('\n').length, 1, err.text);
    t.regex(err.text, /^callhome-gateway simulate: /);
  }
  const help = new Capture();
  t.is(await runSimulate(['--help'], { stdout: help, stderr: new Capture() }), 0);
  t.regex(help.text, /^Usage: callhome-gateway simulate --gateway HOST:PORT --count N/);
});

test('simulate --duration stops the run', async (t) => {
  const gw = await TestGateway.start();
  t.teardown(() => gw.close());
  const stdout = new Capture();
  const started = Date.now();
  const code = await runSimulate(['--gateway', `127.0.0.1:${gw.port}`, '--count', '2', '--persistent', '--duration', '1.5'], { stdout, stderr: new Capture() });
  t.is(code, 0);
  t.true(Date.now() - started >= 1500);
  t.regex(stdout.text, /simulate: stopped after 1\.[5-9] s/);
});

test('simulate --inventory-only writes the file and connects nowhere', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'inv.yaml');
  const stderr = new Capture();
  t.is(
    await runSimulate(['--count', '4', '--write-inventory', file, '--inventory-only', '--seed', 'x', '--username', 'u', '--password', 'p'], { stdout: new Capture(), stderr }),
    0,
  );
  const inv = parse(await readFile(file, 'utf8')) as Inventory;
  t.is(inv.devices.length, 4);
  t.deepEqual(inv.devices[0]!.credentials, { username: 'u', password: 'p' });
  t.deepEqual(
    inv.devices.map((d) => d.ssh.hostKeys[0]),
    new Fleet({ count: 4, seed: 'x' }).devices.map((d) => d.fingerprint),
  );
});

test('argument parsers', (t) => {
  t.deepEqual(parseHostPort('gw.example:4334'), ['gw.example', 4334]);
  t.deepEqual(parseHostPort('gw'), ['gw', 4334]);
  t.deepEqual(parseHostPort('[::1]:830'), ['::1', 830]);
  t.deepEqual(parseHostPort('[fe80::1]'), ['fe80::1', 4334]);
  t.throws(() => parseHostPort('h:0'));
  t.is(parseBytes('1G'), 1024 ** 3);
  t.is(parseBytes('1.5M'), 1.5 * 1024 ** 2);
  t.is(parseBytes('20MiB'), 20 * 1024 ** 2);
  t.is(parseBytes('12345'), 12345);
  t.throws(() => parseBytes('-1'));
});
