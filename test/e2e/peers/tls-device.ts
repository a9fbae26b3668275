// A real RFC 8071 TLS call-home device (REAL_PEERS.md): socat's OpenSSL server is the
// device's TLS server, netconfd (through netconf-subsystem) its NETCONF server, and a second
// socat opens the device's outbound TCP connection to the gateway and joins the two.
// One connection is one NETCONF session (RFC 7589); the device sends its hello at once.
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, NCXSERVER_SOCK } from './constants.js';
import { ensureNetconfd } from './netconfd.js';
import { freePort, makeTempDir, spawnGroup, terminateGroup, type ExitInfo, type GroupChild } from './util.js';

export interface TlsDeviceOptions {
  name?: string;
  /** device certificate and key (PEM files) */
  certFile: string;
  keyFile: string;
  /** CA the device trusts for the gateway's client certificate; omit for a device that asks for none */
  caFile?: string;
  /** more socat OPENSSL-LISTEN options, e.g. ['cipher=AES128-SHA256', 'openssl-max-proto-version=TLS1.2'] */
  serverOptions?: string[];
}

export interface TlsDeviceConnection {
  readonly exited: Promise<ExitInfo>;
  /** socat's raw dumps of the device's plaintext side: what reached netconfd, what it sent. */
  readonly dump: { toDevice: string; fromDevice: string };
  stop(): Promise<void>;
}

export class TlsCallHomeDevice {
  readonly #groups = new Set<GroupChild>();
  #count = 0;
  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly wrapper: string,
    readonly opts: TlsDeviceOptions,
  ) {}

  static async create(opts: TlsDeviceOptions): Promise<TlsCallHomeDevice> {
    const name = (opts.name ?? 'tls-device').replace(/[^A-Za-z0-9._-]/g, '_');
    const dir = makeTempDir(`chgw-peer-tls-${name}-`);
    // socat splits addresses at ',' and ':' and ' ': keep paths plain.
    for (const p of [dir, opts.certFile, opts.keyFile, opts.caFile ?? '']) {
      if (!/^[A-Za-z0-9._/-]*$/.test(p)) throw new Error(`path ${p} has characters socat cannot pass`);
    }
    // netconf-subsystem needs USER and an SSH_CONNECTION whose server port netconfd serves (830).
    const wrapper = join(dir, 'netconf-subsystem-tls.sh');
    writeFileSync(
      wrapper,
      '#!/bin/sh\n' + `USER=\${USER:-root} SSH_CONNECTION="127.0.0.1 4335 127.0.0.1 830" exec ${BIN.netconfSubsystem} --ncxserver-sockname=830@${NCXSERVER_SOCK}\n`,
      { mode: 0o755 },
    );
    chmodSync(wrapper, 0o755);
    await ensureNetconfd();
    return new TlsCallHomeDevice(name, dir, wrapper, opts);
  }

  get socatLog(): string {
    try {
      return readFileSync(join(this.dir, 'socat.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** One call-home connection to host:port carrying one NETCONF session. */
  async callHome(host: string, port: number): Promise<TlsDeviceConnection> {
    const local = await freePort();
    const o = this.opts;
    const tlsServer = [
      `OPENSSL-LISTEN:${local}`,
      'bind=127.0.0.1',
      'reuseaddr',
      `cert=${o.certFile}`,
      `key=${o.keyFile}`,
      ...(o.caFile ? [`cafile=${o.caFile}`, 'verify=1'] : ['verify=0']),
      ...(o.serverOptions ?? []),
    ].join(',');
    const log = openSync(join(this.dir, 'socat.log'), 'a');
    const n = ++this.#count;
    const dump = { toDevice: join(this.dir, `to-device-${n}.raw`), fromDevice: join(this.dir, `from-device-${n}.raw`) };
    let server: GroupChild;
    let dialer: GroupChild;
    try {
      server = spawnGroup(BIN.socat, ['-d', '-r', dump.toDevice, '-R', dump.fromDevice, tlsServer, `EXEC:${this.wrapper}`], { stdio: ['ignore', 'ignore', log] });
      // The device's outbound connection: first reach its own TLS server (retrying until it
      // listens), then the gateway, and join the two.
      dialer = spawnGroup(BIN.socat, [`TCP:127.0.0.1:${local},retry=100,interval=0.05`, `TCP:${host}:${port},connect-timeout=5`], {
        stdio: ['ignore', 'ignore', log],
      });
    } finally {
      closeSync(log);
    }
    this.#groups.add(server);
    this.#groups.add(dialer);
    const groups = [server, dialer];
    return {
      exited: server.exited,
      dump,
      stop: async () => {
        await Promise.all(groups.map((g) => terminateGroup(g)));
        for (const g of groups) this.#groups.delete(g);
      },
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.#groups].map((g) => terminateGroup(g)));
    this.#groups.clear();
  }
}
