// The three ways a manager reaches one real OpenSSH device, set up side by side:
//   direct  — the device's own sshd (dial-in), the baseline;
//   gateway — the device calls home (`sshd -i` over socat) and the manager dials the gateway;
//   sshR    — the device keeps `ssh -R` open to a jump host (a second local sshd) and the
//             manager dials the forwarded port there: the workaround used today.
// One device per cipher, its sshd pinned to that cipher, so every hop negotiates the same one.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CallHomeDevice, type DirectDaemon } from '../../test/e2e/peers/device.js';
import { BIN } from '../../test/e2e/peers/constants.js';
import { freePort, generateKeyPair, makeTempDir, removeTempDir, tcpProbe, waitFor } from '../../test/e2e/peers/util.js';
import { GatewayProcess } from './gateway-process.js';
import { processCpuSeconds, processTreeCpuSeconds } from './proc.js';
import { createStreamingDevice } from './bulk-device.js';
import { sshClientArgs, type SshTarget } from './manager.js';

export type PathName = 'direct' | 'gateway' | 'sshR';
export const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] as const;
export type Cipher = (typeof CIPHERS)[number];

interface CipherRig {
  device: CallHomeDevice;
  daemon: DirectDaemon;
  tunnel: ChildProcess;
  tunnelPort: number;
  id: string;
}

export class Rig {
  private constructor(
    readonly gateway: GatewayProcess,
    private readonly rigs: Map<Cipher, CipherRig>,
    private readonly jump: CallHomeDevice,
    private readonly jumpDaemon: DirectDaemon,
    private readonly managerKey: string,
    private readonly keyDir: string,
  ) {}

  static async start(ciphers: readonly Cipher[], o: { cpuProfileDir?: string; heapFlags?: readonly string[]; nodeArgs?: string[] } = {}): Promise<Rig> {
    const keyDir = makeTempDir('chgw-bench-mgr-');
    const manager = await generateKeyPair(join(keyDir, 'id_ed25519'), 'bench-manager');
    const jump = await createStreamingDevice('bench-jump');
    const jumpDaemon = await jump.directDaemon();
    const devices = new Map<Cipher, CallHomeDevice>();
    for (const c of ciphers) devices.set(c, await createStreamingDevice(`bench-${c.split('-')[0]}`, c));
    const inventory =
      'devices:\n' +
      [...devices]
        .map(
          ([c, d]) => `  - id: ${idOf(c)}\n    ssh: { hostKeys: ["${d.hostPublicKeyLine}"] }\n    credentials: { username: ${d.username}, privateKeyFile: ${d.privateKeyFile} }\n`,
        )
        .join('');
    const users = `users:\n  - name: bench\n    authorizedKeys: ["${manager.publicKeyLine}"]\n    devices: ["*"]\n`;
    const gateway = await GatewayProcess.start({ inventory, users, cpuProfileDir: o.cpuProfileDir, heapFlags: o.heapFlags, nodeArgs: o.nodeArgs });
    try {
      gateway.assertNativeCrypto();
      // an experiment with heap flags of its own (heap-regime.ts) changes them on purpose
      if (!o.heapFlags) gateway.assertHeapSettings();
    } catch (e) {
      await gateway.stop();
      throw e;
    }
    const rigs = new Map<Cipher, CipherRig>();
    for (const [c, device] of devices) {
      device.persistent('127.0.0.1', gateway.callhomePort, { pauseMs: 200 });
      const daemon = await device.directDaemon();
      const tunnelPort = await freePort();
      // the device's side of the workaround: a reverse tunnel to the jump host
      const tunnel = spawn(
        BIN.ssh,
        [
          ...sshClientArgs({ host: '127.0.0.1', port: jumpDaemon.port, user: jump.username, identityFile: jump.privateKeyFile, cipher: c }),
          '-N',
          '-o',
          'ExitOnForwardFailure=yes',
          '-R',
          `127.0.0.1:${tunnelPort}:127.0.0.1:${daemon.port}`,
          '127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      rigs.set(c, { device, daemon, tunnel, tunnelPort, id: idOf(c) });
    }
    const rig = new Rig(gateway, rigs, jump, jumpDaemon, manager.privateKeyFile, keyDir);
    try {
      for (const r of rigs.values()) await waitFor('ssh -R tunnel', () => tcpProbe('127.0.0.1', r.tunnelPort), { timeoutMs: 15_000, intervalMs: 100 });
      await waitFor(
        'devices to call home',
        async () => {
          const list = (await (await fetch(`http://127.0.0.1:${gateway.httpPort}/api/devices`)).json()) as Array<{ state: string }>;
          return list.filter((d) => d.state === 'connected').length === rigs.size;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
    } catch (e) {
      await rig.stop();
      throw e;
    }
    return rig;
  }

  /**
   * CPU seconds so far of the processes that carry the `ssh -R` hop — the device's tunnel
   * `ssh` clients and the jump host's `sshd` with its session processes — the same work the
   * gateway does on its path: decrypt one SSH layer, encrypt another. Idle tunnels cost next
   * to nothing, so all ciphers' tunnels are summed (they live throughout, so none takes its
   * CPU time away by exiting).
   */
  tunnelCpuSeconds(): number {
    let sum = processTreeCpuSeconds(this.jumpDaemon.pid);
    for (const r of this.rigs.values()) if (r.tunnel.pid !== undefined) sum += processCpuSeconds(r.tunnel.pid);
    return sum;
  }

  target(path: PathName, cipher: Cipher): SshTarget {
    const r = this.rigs.get(cipher)!;
    switch (path) {
      case 'direct':
        return { host: '127.0.0.1', port: r.daemon.port, user: r.device.username, identityFile: r.device.privateKeyFile, cipher };
      case 'sshR':
        return { host: '127.0.0.1', port: r.tunnelPort, user: r.device.username, identityFile: r.device.privateKeyFile, cipher };
      case 'gateway':
        return { host: '127.0.0.1', port: this.gateway.northboundPort, user: `bench@${r.id}`, identityFile: this.managerKey, cipher };
    }
  }

  async stop(): Promise<void> {
    for (const r of this.rigs.values()) r.tunnel.kill('SIGTERM');
    await this.gateway.stop();
    await Promise.all([...this.rigs.values()].map((r) => r.device.dispose()));
    await this.jumpDaemon.stop();
    await this.jump.dispose();
    removeTempDir(this.keyDir);
  }
}

function idOf(c: Cipher): string {
  return `bulk-${c.split(/[-@]/)[0]}`;
}
