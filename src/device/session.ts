// One device's call-home SSH connection: the gateway is the SSH *client* on a socket the
// device opened (RFC 8071 §4.1 C3). Owns that connection's lifetime through one
// AbortController whose reason (a GatewayError) is the log reason and the metric result.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { GatewayError, describeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { disconnectReason, type ConnectionResult, type GatewayMetrics } from '../metrics.js';
import { parseHello } from '../netconf/hello.js';
import { HelloReader } from '../netconf/hello-reader.js';
import { fingerprintOfKeyBlob, keyTypeOfBlob } from './identity.js';
import type { HeldSession } from './held-session.js';
import type { HoldFactory } from './hold.js';
import type { DeviceEntry, Inventory } from './inventory.js';
import type { PendingDevices } from './pending.js';
import type { DeviceRegistry } from './registry.js';
import type { SshPolicy } from '../ssh/policy.js';
import { guardChannelWindow } from '../splice/window-guard.js';

export interface DeviceSessionOptions {
  /** Seconds from TCP accept until the device is identified and logged in to. */
  loginGraceTime: number;
  /** Seconds from login until the device's <hello>: the channel open and the hello itself. */
  helloTimeout: number;
  maxHelloBytes: number;
  /** Algorithm lists and the strict-kex check (src/ssh/policy.ts). */
  sshPolicy?: SshPolicy;
  /** Last word on an identified device before any credential is sent (e.g. the device ceiling). */
  admitDevice?: (entry: DeviceEntry) => GatewayError | undefined;
  /** SSH keepalive toward the device once logged in (seconds, count); absent: none. */
  keepalive?: { interval: number; countMax: number };
}

export interface DeviceSessionDeps {
  inventory: () => Inventory;
  pending: PendingDevices;
  registry: DeviceRegistry;
  metrics: GatewayMetrics;
  logger: Logger;
  options: DeviceSessionOptions;
  /** Builds the held session of a `sessions: single` device (device/hold.ts). */
  hold?: HoldFactory;
}

const EOM = ']]>]]>';
// Our hello on the capabilities channel offers base:1.0 only, so the one RPC we send
// (close-session) is in end-of-message framing whatever the device supports (RFC 6242 §4.1).
const GATEWAY_HELLO =
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>' +
  '<capability>urn:ietf:params:netconf:base:1.0</capability>' +
  '</capabilities></hello>' +
  EOM;
const CLOSE_SESSION =
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><close-session/></rpc>' +
  EOM;

const RESULT_OF_CODE: Partial<Record<ErrorCode, ConnectionResult>> = {
  GW_ERR_UNKNOWN_DEVICE: 'unknown_device',
  GW_ERR_AUTH_FAILED: 'auth_failed',
  GW_ERR_TIMEOUT: 'timeout',
  GW_ERR_REJECTED_LIMIT: 'rejected_limit',
};

export type DeviceState = 'handshake' | 'connected' | 'closed';

export class DeviceSession extends EventEmitter {
  readonly transport = 'ssh' as const;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly abortController = new AbortController();
  private readonly client = new ssh2.Client();
  private readonly log: Logger;
  private entry: DeviceEntry | undefined;
  private stateValue: DeviceState = 'handshake';
  private connectedAtValue: Date | undefined;
  private capabilitiesValue: string[] = [];
  private deadline: NodeJS.Timeout | undefined;
  private readonly acceptedAt = performance.now();
  private activeSessions = 0;
  /** A `sessions: single` device's one NETCONF session, lent to one client at a time. */
  held: HeldSession | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly deps: DeviceSessionDeps,
  ) {
    super();
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.remotePort = socket.remotePort ?? 0;
    this.log = deps.logger.child({ remoteAddress: this.remoteAddress, remotePort: this.remotePort, transport: 'ssh' });
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }
  get state(): DeviceState {
    return this.stateValue;
  }
  get deviceId(): string {
    if (!this.entry) throw new Error('device not identified yet');
    return this.entry.id;
  }
  get connectedAt(): Date | undefined {
    return this.connectedAtValue;
  }
  get capabilities(): readonly string[] {
    return this.capabilitiesValue;
  }
  get sessions(): number {
    return this.held?.clients ?? this.activeSessions;
  }

  /** Runs SSH, identification, login and the capabilities exchange; resolves once connected. */
  async start(): Promise<void> {
    const { options } = this.deps;
    this.deadline = setTimeout(
      () => this.kill(new GatewayError('GW_ERR_TIMEOUT', `not logged in within ${options.loginGraceTime}s`)),
      options.loginGraceTime * 1000,
    );
    this.socket.setNoDelay(true);
    const keepalive = options.keepalive;
    // TCP keepalive as well: it catches a dead path even while SSH is mid-handshake.
    if (keepalive) this.socket.setKeepAlive(true, keepalive.interval * 1000);
    this.socket.on('error', () => {}); // ssh2 reports the same failure as a client error
    const ready = new Promise<void>((resolve, reject) => {
      this.client.once('ready', resolve);
      this.signal.addEventListener('abort', () => reject(this.signal.reason), { once: true });
    });
    this.client.on('error', (err: Error & { level?: string }) => this.kill(this.classify(err)));
    this.client.on('close', () =>
      this.kill(new GatewayError('GW_ERR_DEVICE_CLOSED', this.stateValue === 'connected' ? 'device closed the connection' : 'device closed the connection during the handshake')),
    );
    this.client.on('handshake', (negotiated) => {
      const refusal = options.sshPolicy?.refusal(this.client, negotiated);
      if (refusal) this.kill(new GatewayError('GW_ERR_HANDSHAKE_FAILED', refusal));
    });
    let authAttempts: ssh2.AuthenticationType[] | undefined;
    this.client.connect({
      ...(options.sshPolicy ? { algorithms: options.sshPolicy.algorithms, ident: options.sshPolicy.ident } : {}),
      sock: this.socket,
      username: 'callhome-gateway', // the real user name comes from authHandler, per device
      readyTimeout: 0, // our own deadline covers the whole login
      // ssh2 probes every interval once logged in and gives up after countMax unanswered
      // probes: a silent device is gone within interval × (countMax + 1).
      ...(keepalive ? { keepaliveInterval: keepalive.interval * 1000, keepaliveCountMax: keepalive.countMax } : {}),
      hostVerifier: (key: Buffer) => this.verifyHostKey(key),
      authHandler: (_methodsLeft, _partialSuccess, next) => {
        // RFC 8071 §4.1 C7: only this device's own credentials, and only once it is identified.
        const creds = this.entry?.credentials;
        if (!creds) return next(false as never);
        authAttempts ??= [
          ...(creds.privateKey ? [{ type: 'publickey', username: creds.username, key: creds.privateKey, passphrase: creds.passphrase } as never] : []),
          ...(creds.password !== undefined ? [{ type: 'password', username: creds.username, password: creds.password } as never] : []),
        ];
        const method = authAttempts.shift();
        next((method ?? false) as never);
      },
    });
    await ready;
    clearTimeout(this.deadline);
    this.deps.metrics.handshakeDuration.observe({ transport: 'ssh' }, (performance.now() - this.acceptedAt) / 1000);
    // Logged in is not done: a device that never answers the channel open, or never sends
    // its <hello>, must not hold its admission slot, so that phase has a deadline as well.
    this.deadline = setTimeout(
      () => this.kill(new GatewayError('GW_ERR_TIMEOUT', `no <hello> from the device within ${options.helloTimeout}s of login (channel open included)`)),
      options.helloTimeout * 1000,
    );
    if (this.entry?.sessions === 'single' && this.deps.hold) await this.holdSession();
    else await this.readCapabilities();
    clearTimeout(this.deadline);
    this.stateValue = 'connected';
    this.connectedAtValue = new Date();
    this.deps.registry.add(this);
    this.deps.metrics.connectionsTotal.inc({ transport: 'ssh', result: 'accepted' });
    this.log.info({ device: this.deviceId, capabilities: this.capabilitiesValue.length }, 'device connected');
  }

  private verifyHostKey(key: Buffer): boolean {
    const fingerprint = fingerprintOfKeyBlob(key);
    const entry = this.deps.inventory().byHostKey(fingerprint);
    if (!entry) {
      // RFC 8071 §4.1 C5/C6: refuse before any credential is sent; record for the operator.
      const keyType = keyTypeOfBlob(key);
      this.deps.pending.record(fingerprint, keyType, this.remoteAddress);
      this.kill(new GatewayError('GW_ERR_UNKNOWN_DEVICE', `unknown host key ${fingerprint} (${keyType})`, { fields: { fingerprint, keyType } }));
      return false;
    }
    const refused = this.deps.options.admitDevice?.(entry);
    if (refused) {
      this.kill(refused);
      return false;
    }
    this.entry = entry;
    return true;
  }

  private classify(err: Error & { level?: string }): GatewayError {
    if (err.level === 'client-authentication') {
      return new GatewayError('GW_ERR_AUTH_FAILED', `device ${this.entry?.id} refused the gateway's credentials`, { cause: err });
    }
    if (err.level === 'client-timeout') {
      const k = this.deps.options.keepalive;
      return new GatewayError('GW_ERR_KEEPALIVE_TIMEOUT', `no answer to ${k?.countMax} keepalive requests sent every ${k?.interval}s`, { cause: err });
    }
    if (this.stateValue === 'connected') return new GatewayError('GW_ERR_DEVICE_CLOSED', `connection failed: ${describeError(err)}`, { cause: err });
    return new GatewayError('GW_ERR_HANDSHAKE_FAILED', `SSH handshake failed: ${describeError(err)}`, { cause: err });
  }

  /** Reads the device's <hello> on a first channel, then ends that NETCONF session politely. */
  private async readCapabilities(): Promise<void> {
    const { maxHelloBytes } = this.deps.options;
    const channel = await this.openNetconfChannel();
    try {
      // Bounded by the session's deadline (helloTimeout), which aborts the signal.
      const helloText = await new Promise<string>((resolve, reject) => {
        const reader = new HelloReader(maxHelloBytes);
        const onData = (chunk: Buffer) => {
          let hello: Buffer | undefined;
          try {
            hello = reader.push(chunk);
          } catch {
            channel.off('data', onData);
            reject(new GatewayError('GW_ERR_NOT_NETCONF', `device <hello> exceeds ${maxHelloBytes} bytes`));
            return;
          }
          if (hello) {
            channel.off('data', onData);
            resolve(hello.toString('utf8'));
          }
        };
        channel.on('data', onData);
        channel.once('close', () => reject(new GatewayError('GW_ERR_NOT_NETCONF', 'netconf channel closed before the device sent <hello>')));
        this.signal.addEventListener('abort', () => reject(this.signal.reason), { once: true });
      });
      try {
        this.capabilitiesValue = parseHello(helloText).capabilities;
      } catch (err) {
        throw new GatewayError('GW_ERR_NOT_NETCONF', `device did not send a NETCONF <hello>: ${describeError(err)}`);
      }
      channel.write(GATEWAY_HELLO + CLOSE_SESSION);
      // The reply is not needed; give the device a moment to answer, then close either way.
      const closeTimer = setTimeout(() => channel.close(), 2000);
      channel.once('close', () => clearTimeout(closeTimer));
      channel.on('data', () => {});
    } catch (err) {
      channel.close();
      const reason = err instanceof GatewayError ? err : new GatewayError('GW_ERR_NOT_NETCONF', describeError(err));
      this.kill(reason);
      throw reason;
    }
  }

  /** `sessions: single`: keeps the first channel as the device's one NETCONF session. */
  private async holdSession(): Promise<void> {
    const channel = await this.openNetconfChannel();
    this.held = this.deps.hold!(channel, { logger: this.log.child({ device: this.entry?.id }), onFatal: (r) => this.kill(r) });
    channel.once('close', () => this.kill(new GatewayError('GW_ERR_DEVICE_CLOSED', 'device ended its only NETCONF session')));
    try {
      this.capabilitiesValue = [...(await this.held.start()).capabilities];
    } catch (err) {
      const reason = err instanceof GatewayError ? err : new GatewayError('GW_ERR_NOT_NETCONF', describeError(err));
      this.kill(reason);
      throw reason;
    }
  }

  /** Opens a new `netconf` subsystem channel on this device's SSH connection. */
  openNetconfChannel(): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', 'device connection is closed'));
        return;
      }
      // A device that never answers the open must not leave the caller waiting past the close.
      const onAbort = () => reject(this.signal.reason);
      this.signal.addEventListener('abort', onAbort, { once: true });
      try {
        this.client.subsys('netconf', (err, channel) => {
          this.signal.removeEventListener('abort', onAbort);
          if (err) reject(new GatewayError('GW_ERR_CHANNEL_REFUSED', `device refused the netconf channel: ${describeError(err)}`, { cause: err }));
          else resolve(guardChannelWindow(channel, (why) => this.kill(why)));
        });
      } catch (err) {
        reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', `device connection is closed: ${describeError(err)}`));
      }
    });
  }

  /** Counts a client session on this device for the API; returns the release function. */
  trackSession(): () => void {
    this.activeSessions++;
    this.emit('sessions', this.activeSessions);
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.activeSessions--;
        this.emit('sessions', this.activeSessions);
      }
    };
  }

  /** Closes the connection exactly once, for the given reason. Safe to call again. */
  kill(reason: GatewayError): void {
    if (this.stateValue === 'closed') return;
    const wasConnected = this.stateValue === 'connected';
    this.stateValue = 'closed';
    clearTimeout(this.deadline);
    if (!wasConnected) {
      const result = RESULT_OF_CODE[reason.code] ?? 'handshake_failed';
      this.deps.metrics.connectionsTotal.inc({ transport: 'ssh', result });
      this.log.warn({ device: this.entry?.id, ...reason.fields, reason: reason.code, result }, `call-home connection refused: ${reason.message}`);
    } else {
      this.deps.metrics.deviceDisconnectsTotal.inc({ reason: disconnectReason(reason.code) });
      this.log.info({ device: this.entry?.id, ...reason.fields, reason: reason.code }, `device disconnected: ${reason.message}`);
    }
    this.abortController.abort(reason);
    this.held?.close(reason);
    this.client.end();
    // ssh2's end() waits for its write queue; a device that stopped reading must still go.
    setImmediate(() => this.socket.destroy());
    this.emit('closed', reason);
  }
}
