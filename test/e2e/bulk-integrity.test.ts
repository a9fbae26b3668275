// Bulk bytes through the gateway (its own process, ssh2 as patched by patches/) between real
// OpenSSH peers arrive exactly: a random 1 GiB reply while the device's sshd rekeys every
// 64 MiB (RekeyLimit), and 64 MiB each way with each AEAD cipher while the manager's ssh
// rekeys every 16 MiB. The device's NETCONF
// server (bench/lib/netconf-stream.ts) and the manager (OpenSSH `ssh -s netconf`) hash what
// they send and receive; the digests must match.
import anyTest from 'ava';
import { join } from 'node:path';
import { createStreamingDevice } from '../../bench/lib/bulk-device.js';
import { GatewayProcess } from '../../bench/lib/gateway-process.js';
import { NetconfManager } from '../../bench/lib/manager.js';
import { generateKeyPair, makeTempDir, removeTempDir, requirePeers, type CallHomeDevice } from './peers/index.js';

const test = requirePeers(anyTest);
const MiB = 1024 * 1024;
const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] as const;

interface Setup {
  gateway: GatewayProcess;
  devices: Map<string, CallHomeDevice>;
  managerKey: string;
  keyDir: string;
}

let setup: Promise<Setup> | undefined;

/** One gateway process; one device per cipher, plus an aes128-gcm device that rekeys every 64 MiB. */
function start(): Promise<Setup> {
  setup ??= (async () => {
    const keyDir = makeTempDir('chgw-bulk-mgr-');
    const manager = await generateKeyPair(join(keyDir, 'id_ed25519'), 'bulk-manager');
    const devices = new Map<string, CallHomeDevice>();
    for (const c of CIPHERS) devices.set(c, await createStreamingDevice(`bulk-${c.split('-')[0]}`, c));
    devices.set('rekey', await createStreamingDevice('bulk-rekey', CIPHERS[0], { rekeyLimit: '64M', logLevel: 'DEBUG1' }));
    const inventory =
      'devices:\n' +
      [...devices]
        .map(
          ([id, d]) =>
            `  - id: ${idOf(id)}\n    ssh: { hostKeys: ["${d.hostPublicKeyLine}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n`,
        )
        .join('');
    const users = `users:\n  - name: bulk\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`;
    const gateway = await GatewayProcess.start({ inventory, users });
    for (const d of devices.values()) d.persistent('127.0.0.1', gateway.callhomePort, { pauseMs: 200 });
    await gateway.waitForConnected(devices.size, 30_000);
    return { gateway, devices, managerKey: manager.privateKeyFile, keyDir };
  })();
  return setup;
}

function idOf(key: string): string {
  return `bulk-${key.split(/[-@]/)[0]}`;
}

test.after.always(async () => {
  if (!setup) return;
  const s = await setup.catch(() => undefined);
  if (!s) return;
  await s.gateway.stop();
  await Promise.all([...s.devices.values()].map((d) => d.dispose()));
  removeTempDir(s.keyDir);
});

async function manager(s: Setup, device: string, cipher: string, options?: string[]): Promise<NetconfManager> {
  return NetconfManager.open({ host: '127.0.0.1', port: s.gateway.northboundPort, user: `bulk@${idOf(device)}`, identityFile: s.managerKey, cipher, options });
}

/** A <get> answered with `size` bytes of random content; resolves with [device's digest, manager's digest]. */
async function reply(m: NetconfManager, size: number): Promise<[string, string]> {
  m.checkDigest();
  await m.rpc(1, `<get><filter type="subtree"><bulk xmlns="urn:bench" size="${size}" digest="sha256"/></filter></get>`);
  const sent = /<sha256>([0-9a-f]{64})<\/sha256>/.exec(m.lastChunk)?.[1] ?? `no digest in ${m.lastChunk.slice(0, 200)}`;
  return [sent, m.replyDigest];
}

/** An <edit-config> of `size` bytes of random content; resolves with [manager's digest, device's digest]. */
async function request(m: NetconfManager, size: number): Promise<[string, string]> {
  const answer = await m.bigRequest(2, size, { digest: true });
  const received = /<ok\/><sha256>([0-9a-f]{64})<\/sha256>/.exec(answer)?.[1] ?? `no digest in ${answer.slice(0, 200)}`;
  return [m.sentDigest, received];
}

test.serial('a 1 GiB reply arrives byte for byte while the device rekeys every 64 MiB', async (t) => {
  t.timeout(110_000);
  const s = await start();
  const device = s.devices.get('rekey')!;
  const logFrom = device.sshdLog().length;
  const m = await manager(s, 'rekey', CIPHERS[0]);
  try {
    const [sent, received] = await reply(m, 1024 * MiB);
    t.is(m.received, 1024 * MiB);
    t.is(received, sent);
  } finally {
    await m.close();
  }
  // sshd logs one SSH2_MSG_KEXINIT per key exchange: 1 GiB at 64 MiB makes about 16
  const kex = device.sshdLog(logFrom).match(/SSH2_MSG_KEXINIT sent/g)?.length ?? 0;
  t.true(kex >= 8, `only ${kex} key exchanges seen in the device's sshd log`);
});

for (const cipher of CIPHERS) {
  test.serial(`64 MiB each way arrive byte for byte while the manager rekeys every 16 MiB, ${cipher}`, async (t) => {
    t.timeout(90_000);
    const s = await start();
    // the gateway's ssh2 server side rekeys under load too: OpenSSH's client asks every 16 MiB
    const m = await manager(s, cipher, cipher, ['RekeyLimit=16M', 'LogLevel=DEBUG1']);
    try {
      const [sentDown, receivedDown] = await reply(m, 64 * MiB);
      t.is(receivedDown, sentDown, 'reply (device to manager)');
      const [sentUp, receivedUp] = await request(m, 64 * MiB + 4321);
      t.is(receivedUp, sentUp, 'request (manager to device)');
    } finally {
      await m.close();
    }
    const kex = m.stderr.match(/SSH2_MSG_KEXINIT sent/g)?.length ?? 0;
    t.true(kex >= 4, `only ${kex} key exchanges in the manager's ssh log`);
  });
}
