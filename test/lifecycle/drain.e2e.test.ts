// Graceful drain of the real CLI process: SIGTERM while the OpenSSH client is part-way
// through a large get-config reply (it stops reading, so the reply is held up by SSH flow
// control). /readyz turns 503 and new call-homes are refused at once, the reply still
// arrives whole, and the process exits 0 within shutdown.grace. Out of grace: exit 1; a
// second signal: exit at once.
import anyTest from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimulatedDevice } from '../../src/simulator/index.js';
import { BIN, EOM, GET_CONFIG_RUNNING, HELLO_BASE10, generateKeyPair, requirePeers, rpc, sshArgs, waitFor } from '../e2e/peers/index.js';

const test = requirePeers(anyTest);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const REPLY_BYTES = 24 * 1024 * 1024;

interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  ports: { callhome: number; northbound: number; http: number };
  exited: Promise<{ code: number | null; at: number }>;
  log: () => string;
}

async function startCli(grace: number, device: SimulatedDevice, managerKey: string): Promise<RunningCli> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-drain-'));
  const inventory = path.join(dir, 'devices.yaml');
  const users = path.join(dir, 'users.yaml');
  writeFileSync(
    inventory,
    `devices:\n  - id: big\n    ssh: { hostKeys: ["${device.fingerprint}"] }\n    credentials: { username: ${device.username}, password: "${device.password}" }\n`,
  );
  writeFileSync(users, `users:\n  - name: alice\n    authorizedKeys: ["${managerKey}"]\n    devices: ["*"]\n`);
  const config = path.join(dir, 'gateway.yaml');
  writeFileSync(
    config,
    [
      `stateDir: ${path.join(dir, 'state')}`,
      `inventory: { file: ${inventory} }`,
      `users: { file: ${users} }`,
      'callhome: { ssh: { host: 127.0.0.1, port: 0 }, tls: { host: 127.0.0.1, port: 0 } }',
      `northbound: { host: 127.0.0.1, port: 0, hostKeyFile: ${gatewayKey.privateKeyFile} }`,
      'http: { host: 127.0.0.1, port: 0 }',
      `shutdown: { grace: ${grace} }`,
    ].join('\n') + '\n',
  );
  const child = spawn(process.execPath, [CLI, 'run', '--config', config], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway not ready:\n${out}`)), 20_000);
    const check = () => {
      const line = out.split('\n').find((l) => l.includes('"gateway ready"'));
      if (line) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(JSON.parse(line) as Record<string, string>);
      }
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => reject(new Error(`gateway exited ${code}:\n${out}`)));
  });
  const port = (hp: string) => Number(hp.slice(hp.lastIndexOf(':') + 1));
  return {
    child,
    ports: { callhome: port(ready.callhomeSsh!), northbound: port(ready.northbound!), http: port(ready.http!) },
    exited,
    log: () => out,
  };
}

/** `ssh -s netconf` sending hello + one get-config; the test decides when stdout is read. */
function startManager(port: number, identityFile: string) {
  const child = spawn(BIN.ssh, sshArgs({ host: '127.0.0.1', port, username: 'alice@big', identityFile }), { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    chunks.push(c);
    bytes += c.length;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.write(HELLO_BASE10 + EOM + rpc(101, GET_CONFIG_RUNNING) + EOM);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, bytes: () => bytes, text: () => Buffer.concat(chunks).toString('utf8'), stderr: () => stderr };
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });

let managerKey: { privateKeyFile: string; publicKeyLine: string };
let gatewayKey: { privateKeyFile: string };
test.before(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-drain-key-'));
  managerKey = await generateKeyPair(path.join(dir, 'id_ed25519'), 'alice@drain');
  gatewayKey = await generateKeyPair(path.join(dir, 'gateway_ed25519'), 'gateway');
});

async function midReply(grace: number) {
  const device = new SimulatedDevice({ id: 'big', password: 'pw-big', replySize: REPLY_BYTES });
  const gw = await startCli(grace, device, managerKey.publicKeyLine);
  await device.connect('127.0.0.1', gw.ports.callhome);
  const manager = startManager(gw.ports.northbound, managerKey.privateKeyFile);
  // Some of the reply has reached the client; then it stops reading.
  await waitFor('the first megabytes of the reply', () => manager.bytes() > 2 * 1024 * 1024, { timeoutMs: 20_000, intervalMs: 20 });
  manager.child.stdout.pause();
  return { device, gw, manager };
}

test.serial('SIGTERM mid-way through a large get-config: readyz 503, new call-homes refused, the reply arrives whole, exit 0', async (t) => {
  const { device, gw, manager } = await midReply(20);
  try {
    const sentAt = Date.now();
    gw.child.kill('SIGTERM');
    await waitFor('readyz 503', async () => (await fetch(`http://127.0.0.1:${gw.ports.http}/readyz`)).status === 503, { timeoutMs: 3000, intervalMs: 20 });
    t.true(await refused(gw.ports.callhome), 'a new call-home during the drain is refused');
    t.true(await refused(gw.ports.northbound), 'a new client during the drain is refused');
    await new Promise((r) => setTimeout(r, 1000));
    t.true(manager.bytes() < REPLY_BYTES, 'the reply was still in flight during the drain');
    manager.child.stdout.resume();
    const { code, at } = await gw.exited;
    t.log(`exit ${code} ${at - sentAt} ms after SIGTERM (grace 20 s); reply ${manager.bytes()} bytes`);
    t.is(code, 0, gw.log().slice(-2000));
    t.true(at - sentAt < 20_000);
    await manager.exited;
    const text = manager.text();
    const hello = text.indexOf(EOM);
    const reply = text.slice(hello + EOM.length);
    t.regex(reply.slice(0, 300), /^\s*(<\?xml[^>]*>\s*)?<rpc-reply[^>]*message-id="101"/, reply.slice(0, 300));
    t.regex(reply.slice(-100), /<\/rpc-reply>\]\]>\]\]>\s*$/, 'the reply ends whole');
    t.true(Buffer.byteLength(reply) >= REPLY_BYTES, `${Buffer.byteLength(reply)} bytes`);
    t.regex(manager.stderr(), /callhome-gateway: the gateway is shutting down/);
    t.regex(gw.log(), /client sessions drained/);
  } finally {
    manager.child.kill('SIGKILL');
    gw.child.kill('SIGKILL');
    await device.close();
  }
});

test.serial('the grace runs out while the client does not read: exit 1 at the grace; a second SIGTERM closes at once', async (t) => {
  {
    const { device, gw, manager } = await midReply(2);
    try {
      const sentAt = Date.now();
      gw.child.kill('SIGTERM');
      const { code, at } = await gw.exited;
      t.log(`grace 2 s: exit ${code} after ${at - sentAt} ms`);
      t.is(code, 1);
      t.true(at - sentAt >= 1900 && at - sentAt < 6000, `${at - sentAt} ms`);
      t.regex(gw.log(), /drain incomplete after 2s/);
    } finally {
      manager.child.kill('SIGKILL');
      gw.child.kill('SIGKILL');
      await device.close();
    }
  }
  {
    const { device, gw, manager } = await midReply(30);
    try {
      gw.child.kill('SIGTERM');
      await waitFor('the drain to start (readyz 503)', async () => (await fetch(`http://127.0.0.1:${gw.ports.http}/readyz`)).status === 503, { timeoutMs: 3000, intervalMs: 20 });
      const sentAt = Date.now();
      gw.child.kill('SIGTERM');
      const { code, at } = await gw.exited;
      t.log(`second SIGTERM: exit ${code} after ${at - sentAt} ms`);
      t.is(code, 1);
      t.true(at - sentAt < 2000, `${at - sentAt} ms`);
    } finally {
      manager.child.kill('SIGKILL');
      gw.child.kill('SIGKILL');
      await device.close();
    }
  }
});
