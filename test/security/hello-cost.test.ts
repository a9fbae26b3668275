// A <hello> sent a few bytes at a time must cost the gateway about what its size costs:
// each byte scanned once. Before, every piece re-joined and re-searched all bytes so far
// (a 400 KB hello in 8-byte pieces took 14 s of CPU). The devices run in child processes,
// so the CPU time of this process is the gateway's; the bound compares two sizes sent the
// same way, measured in the same test (serially: CPU time is per process), never an absolute time.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { fingerprintOfKeyBlob } from '../../src/inventory/identity.js';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import { HelloReader } from '../../src/netconf/hello-reader.js';
import { FramingError } from '../../src/netconf/framing.js';
import { createCa, issueCertificate } from '../../src/tls/certs.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { bigHello, type TrickleOptions } from '../helpers/trickle-device.js';

const TRICKLE = fileURLToPath(new URL('../helpers/trickle-device.js', import.meta.url));
const KB = 1024;

test('HelloReader scans each byte once, however the hello is split, and stops at the cap', (t) => {
  const hello = Buffer.from(bigHello(400 * KB));
  const payload = hello.subarray(0, hello.length - 6);
  for (const piece of [1, 8, 4096, hello.length]) {
    const reader = new HelloReader(1024 * KB);
    let got: Buffer | undefined;
    for (let i = 0; i < hello.length && !got; i += piece) got = reader.push(hello.subarray(i, i + piece));
    t.true(got?.equals(payload), `piece ${piece}`);
    t.is(reader.scanned, hello.length, `piece ${piece}: every byte scanned exactly once`);
  }
  // What follows the hello in the same read is not scanned.
  const reader = new HelloReader(1024 * KB);
  t.truthy(reader.push(Buffer.concat([Buffer.from('<hello/>]]>]]>'), Buffer.alloc(100_000, 0x5d)])));
  t.is(reader.scanned, '<hello/>]]>]]>'.length);
  const capped = new HelloReader(1000);
  t.throws(
    () => {
      for (let i = 0; i < 2000; i += 8) capped.push(Buffer.alloc(8, 0x41));
    },
    { instanceOf: FramingError },
  );
});

const children: ChildProcess[] = [];
let gw: TestGateway | undefined;
test.after.always(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await gw?.close();
});

test.serial('a 400 KB hello in 8-byte pieces costs the gateway linear CPU time, on the plain and the held session', async (t) => {
  const devices = ['small', 'big', 'small-single', 'big-single', 'whole'].map((id) => {
    const key = generateUsableEd25519(id);
    const fp = fingerprintOfKeyBlob((ssh2.utils.parseKey(key.public) as ssh2.ParsedKey).getPublicSSH());
    return { id, key, fp };
  });
  const inventory =
    'devices:\n' +
    devices
      .map(
        (d) =>
          `  - id: ${d.id}\n    ssh: { hostKeys: ["${d.fp}"] }\n    credentials: { username: admin, password: pw }\n${d.id.endsWith('single') ? '    sessions: single\n' : ''}`,
      )
      .join('');
  gw = await startGateway({ inventory, env: { CHGW_LOG_LEVEL: 'info', CHGW_CALLHOME_HELLOTIMEOUT: '100', CHGW_CALLHOME_LOGINGRACETIME: '100' } });
  const g = gw;

  const cpuToConnect = async (id: string, helloBytes: number, pieceBytes: number): Promise<number> => {
    const d = devices.find((x) => x.id === id)!;
    const options: TrickleOptions = { port: g.callhomePort, hostKey: d.key.private, username: 'admin', password: 'pw', helloBytes, pieceBytes };
    const connected = g.waitForLog(new RegExp(`"device":"${id}"[^\\n]*"msg":"device connected"`), 110_000);
    const before = process.cpuUsage();
    const child = spawn(process.execPath, [TRICKLE, JSON.stringify(options)], { stdio: 'ignore' });
    children.push(child);
    await connected;
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1e6;
  };

  const whole = await cpuToConnect('whole', 400 * KB, 400 * KB);
  const results: Record<string, number> = { whole };
  for (const suffix of ['', '-single']) {
    const small = await cpuToConnect(`small${suffix}`, 100 * KB, 8);
    const big = await cpuToConnect(`big${suffix}`, 400 * KB, 8);
    results[`small${suffix}`] = small;
    results[`big${suffix}`] = big;
    // Linear: about 4x for 4x the bytes (and pieces). Quadratic: about 16x.
    t.true(big < 8 * small, `${suffix || 'plain'}: 400 KB in 8-byte pieces took ${big.toFixed(2)} s of CPU, 100 KB took ${small.toFixed(2)} s (ratio ${(big / small).toFixed(1)})`);
  }
  t.log(
    `gateway CPU seconds to connect: ${Object.entries(results)
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(', ')}`,
  );
  const view = await g.get<{ capabilities: string[] }>('/api/devices/big');
  t.true(view.body.capabilities.length > 4000, 'the whole hello was read');
});

test.serial('TLS call home: a 400 KB hello in 8-byte TLS records costs linear CPU time too', async (t) => {
  const ca = createCa('trickle test CA');
  const devices = ['tls-small', 'tls-big'].map((id) => {
    const pair = issueCertificate(ca, { id, usage: 'server' });
    return { id, pair, fp: new X509Certificate(pair.certPem).fingerprint256 };
  });
  const inventory = 'devices:\n' + devices.map((d) => `  - id: ${d.id}\n    tls: { fingerprints: ["${d.fp}"] }\n`).join('');
  const g = await startGateway({ inventory, env: { CHGW_LOG_LEVEL: 'info', CHGW_CALLHOME_HELLOTIMEOUT: '100', CHGW_CALLHOME_LOGINGRACETIME: '100' } });
  t.teardown(() => g.close());
  const port = g.gateway.addresses().callhomeTls;
  const cpuToConnect = async (id: string, helloBytes: number): Promise<number> => {
    const d = devices.find((x) => x.id === id)!;
    const options: TrickleOptions = { port, hostKey: '', username: '', password: '', helloBytes, pieceBytes: 8, tls: { cert: d.pair.certPem, key: d.pair.keyPem } };
    const connected = g.waitForLog(new RegExp(`"device":"${id}"[^\\n]*"msg":"device connected"`), 110_000);
    const before = process.cpuUsage();
    children.push(spawn(process.execPath, [TRICKLE, JSON.stringify(options)], { stdio: 'ignore' }));
    await connected;
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1e6;
  };
  const small = await cpuToConnect('tls-small', 100 * KB);
  const big = await cpuToConnect('tls-big', 400 * KB);
  t.log(`gateway CPU seconds to connect over TLS: 100 KB ${small.toFixed(3)}, 400 KB ${big.toFixed(3)}`);
  t.true(big < 8 * small, `400 KB in 8-byte records took ${big.toFixed(2)} s of CPU, 100 KB took ${small.toFixed(2)} s`);
  t.true((await g.get<{ capabilities: string[] }>('/api/devices/tls-big')).body.capabilities.length > 4000);
});
