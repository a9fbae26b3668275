// Many simulated devices in one process: they share one ssh2 Server (see SshHost), call home
// at a given rate, and can describe themselves as an inventory file in SPEC.md's format.
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { SimulatedDevice, type SimulatedDeviceOptions } from './device.js';
import { SshHost, type SshHostOptions } from './ssh-host.js';
import { deriveSeed } from './keys.js';

export interface FleetOptions {
  count: number;
  /** ids are `${idPrefix}${n}` with n zero-padded to 5 digits: sim-00001. */
  idPrefix?: string;
  firstIndex?: number;
  username?: string;
  password?: string;
  replySize?: number;
  persistent?: boolean;
  /** The same seed gives the same host keys, so an inventory written once stays valid. */
  seed?: string;
  reconnectDelay?: SimulatedDeviceOptions['reconnectDelay'];
  handshakeTimeout?: number;
  maxMessageSize?: number;
  ssh?: SshHostOptions;
}

export interface FleetProgress {
  total: number;
  /** Devices whose first attempt has started. */
  started: number;
  /** Connected right now. */
  connected: number;
  /** Failed attempts so far. */
  failed: number;
  reconnects: number;
  elapsedMs: number;
}

export interface FleetSummary extends FleetProgress {
  /** Devices that were logged in to at least once. */
  everConnected: number;
  /** From start until all devices were connected at once; null if that has not happened. */
  timeToAllConnectedMs: number | null;
  /** Successful logins per second over the connecting phase. */
  handshakesPerSecond: number;
}

export interface StartOptions {
  /** Devices started per second; Infinity starts all at once. Default 100. */
  rate?: number;
  onProgress?: (p: FleetProgress) => void;
}

export class Fleet {
  readonly devices: SimulatedDevice[] = [];
  readonly sshHost: SshHost;
  private started = 0;
  private connected = 0;
  private failed = 0;
  private everConnected = 0;
  private logins = 0;
  private reconnects = 0;
  private lastLoginAt = 0;
  private startedAt = 0;
  private allConnectedAt: number | null = null;
  private settledFirst = 0;
  private startTimer: NodeJS.Timeout | undefined;
  private onProgress: ((p: FleetProgress) => void) | undefined;
  private onSettled: (() => void) | undefined;
  private closing = false;

  constructor(options: FleetOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) throw new RangeError('count must be a positive integer');
    this.sshHost = new SshHost(options.ssh);
    const prefix = options.idPrefix ?? 'sim-';
    const first = options.firstIndex ?? 1;
    for (let i = 0; i < options.count; i++) {
      const id = `${prefix}${String(first + i).padStart(5, '0')}`;
      this.devices.push(
        new SimulatedDevice({
          id,
          seed: options.seed !== undefined ? deriveSeed(options.seed, id) : randomBytes(32),
          username: options.username,
          password: options.password,
          replySize: options.replySize,
          persistent: options.persistent,
          reconnectDelay: options.reconnectDelay,
          handshakeTimeout: options.handshakeTimeout,
          maxMessageSize: options.maxMessageSize,
          sshHost: this.sshHost,
        }),
      );
    }
  }

  /** The inventory (SPEC.md "Device inventory") listing every device of the fleet. */
  inventoryYaml(): string {
    const header = `# ${this.devices.length} simulated devices (callhome-gateway simulate)\n`;
    return (
      header +
      stringify(
        {
          devices: this.devices.map((d) => ({
            id: d.id,
            ssh: { hostKeys: [d.fingerprint] },
            credentials: { username: d.username, password: d.password },
          })),
        },
        { lineWidth: 0 },
      )
    );
  }

  /** Written to a temporary file and renamed, so a gateway watching the file never reads half. */
  async writeInventory(file: string): Promise<void> {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, this.inventoryYaml(), { mode: 0o600 });
    await rename(tmp, file);
  }

  /**
   * Starts the devices calling `host:port` at `rate` per second. Resolves once every device
   * has had its first attempt settle (logged in, or failed); devices keep running after.
   */
  start(host: string, port: number, options: StartOptions = {}): Promise<FleetSummary> {
    if (this.startedAt !== 0) return Promise.reject(new Error('the fleet was already started'));
    const rate = options.rate ?? 100;
    if (!(rate > 0)) return Promise.reject(new RangeError('rate must be positive'));
    this.onProgress = options.onProgress;
    this.startedAt = Date.now();
    const total = this.devices.length;
    const settled = new Promise<void>((resolve) => (this.onSettled = resolve));

    const launch = (d: SimulatedDevice): void => {
      this.started++;
      let firstSettled = false;
      const settleFirst = (): void => {
        if (firstSettled) return;
        firstSettled = true;
        if (++this.settledFirst === total) this.onSettled?.();
      };
      let ever = false;
      d.on('ready', () => {
        this.connected++;
        this.logins++;
        this.lastLoginAt = Date.now();
        if (!ever) {
          ever = true;
          this.everConnected++;
        }
        if (this.connected === total && this.allConnectedAt === null) this.allConnectedAt = Date.now();
        settleFirst();
        this.notify();
      });
      d.on('disconnected', () => {
        this.connected--;
        this.notify();
      });
      d.on('reconnecting', () => {
        this.reconnects++;
      });
      d.on('attempt-failed', () => {
        this.failed++;
        settleFirst();
        this.notify();
      });
      d.connect(host, port).catch(() => undefined);
      this.notify();
    };

    if (!Number.isFinite(rate)) {
      for (const d of this.devices) launch(d);
    } else {
      // Due devices are started on each tick, so rates above the timer resolution still hold.
      const tick = Math.max(10, Math.min(1000, 1000 / rate));
      const step = (): void => {
        if (this.closing) return;
        const due = Math.min(total, Math.floor(((Date.now() - this.startedAt) * rate) / 1000) + 1);
        while (this.started < due) launch(this.devices[this.started]!);
        if (this.started < total) this.startTimer = setTimeout(step, tick);
      };
      step();
    }
    return settled.then(() => this.summary());
  }

  progress(): FleetProgress {
    return {
      total: this.devices.length,
      started: this.started,
      connected: this.connected,
      failed: this.failed,
      reconnects: this.reconnects,
      elapsedMs: this.startedAt === 0 ? 0 : Date.now() - this.startedAt,
    };
  }

  private notify(): void {
    this.onProgress?.(this.progress());
  }

  summary(): FleetSummary {
    const p = this.progress();
    const span = (this.lastLoginAt - this.startedAt) / 1000;
    return {
      ...p,
      everConnected: this.everConnected,
      timeToAllConnectedMs: this.allConnectedAt === null ? null : this.allConnectedAt - this.startedAt,
      handshakesPerSecond: this.logins > 0 && span > 0 ? this.logins / span : 0,
    };
  }

  /** Stops starting devices and closes them all. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.startTimer);
    await Promise.all(this.devices.map((d) => d.close()));
    this.onSettled?.();
  }
}
