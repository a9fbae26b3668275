// One device's call-home SSH connection: the gateway is the SSH *client* on a socket the
// device opened (RFC 8071 §4.1 C3). Its state, deadline and end are device/connection.ts's.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import { DeviceLogin } from './auth.js';
import { ChannelTurns } from './channel-turns.js';
import { requestNetconfChannel } from './netconf-channel.js';
import { DeviceConnection, type DeviceState } from './connection.js';
import { fingerprintOfKeyBlob, keyTypeOfBlob } from '../inventory/identity.js';
import type { HeldSession } from './held/session.js';
import type { HoldFactory } from './hold.js';
import type { ClientSession, SessionResult } from './client.js';
import type { LiveDevice } from './live.js';
import { serveOnChannel } from './serve-channel.js';
import { serveHeldSession } from './serve-held.js';
import type { DeviceEntry, Inventory } from '../inventory/inventory.js';
import type { PendingDevices } from '../inventory/pending.js';
import type { DeviceRegistry } from './registry.js';
import { PROBE_DROP_WINDOW_MS, probeSecondSession, type SessionModeDecision, type SessionModeMemory } from './session-mode.js';
import type { SshPolicy } from '../ssh/policy.js';

export interface DeviceSessionOptions {
  /** Seconds from TCP accept until the device is identified and logged in to. */
  loginGraceTime: number;
  /** Seconds from login until the device's <hello> on its first channel, the channel open included (the probe of a second channel gets as long again). */
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
  /** Builds the held session on the device's first channel (device/hold.ts). */
  hold: HoldFactory;
  /** What earlier connections taught about each device's session mode. */
  sessionModes: SessionModeMemory;
}

export type { DeviceState };

export class DeviceSession extends DeviceConnection implements LiveDevice {
  readonly transport = 'ssh' as const;
  private readonly client = new ssh2.Client();
  private entry: DeviceEntry | undefined;
  private capabilitiesValue: string[] = [];
  private login: DeviceLogin | undefined;
  private readonly channelTurns = new ChannelTurns();
  private activeSessions = 0;
  /** The device's first NETCONF session, kept open by the gateway for as long as the connection. */
  private own: HeldSession | undefined;
  private mode: SessionModeDecision = { mode: 'multiple', reason: 'not decided yet' };
  /** When the auto probe's second session ended (a drop soon after is blamed on it). */
  private probeEndedAt: number | undefined;

  constructor(
    socket: Socket,
    private readonly deps: DeviceSessionDeps,
  ) {
    super(socket, 'ssh', deps.logger, deps.metrics);
  }

  get deviceId(): string {
    if (!this.entry) throw new Error('device not identified yet');
    return this.entry.id;
  }
  protected get identifiedId(): string | undefined {
    return this.entry?.id;
  }
  get capabilities(): readonly string[] {
    return this.capabilitiesValue;
  }
  get sessions(): number {
    return this.held?.clients ?? this.activeSessions;
  }
  /** The held first session, when it is lent to clients (single mode). */
  private get held(): HeldSession | undefined {
    return this.mode.mode === 'single' ? this.own : undefined;
  }
  get sessionMode(): SessionModeDecision {
    return this.mode;
  }

  /** Runs SSH, identification, login and the capabilities exchange; resolves once connected. */
  async start(): Promise<void> {
    const { options } = this.deps;
    this.setDeadline(options.loginGraceTime, () => new GatewayError('GW_ERR_TIMEOUT', `not logged in within ${options.loginGraceTime}s`));
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
    let login: DeviceLogin | undefined;
    this.client.connect({
      ...(options.sshPolicy ? { algorithms: options.sshPolicy.algorithms, ident: options.sshPolicy.ident } : {}),
      sock: this.socket,
      username: 'callhome-gateway', // the real user name comes from authHandler, per device
      readyTimeout: 0, // our own deadline covers the whole login
      // ssh2 probes every interval once logged in and gives up after countMax unanswered
      // probes: a silent device is gone within interval × (countMax + 1).
      ...(keepalive ? { keepaliveInterval: keepalive.interval * 1000, keepaliveCountMax: keepalive.countMax } : {}),
      hostVerifier: (key: Buffer) => this.verifyHostKey(key),
      authHandler: (methodsLeft, _partialSuccess, next) => {
        // RFC 8071 §4.1 C7: only this device's own credentials, and only once it is identified.
        const creds = this.entry?.credentials;
        if (!creds) return next(false as never);
        login ??= new DeviceLogin(creds, (why) => this.kill(why));
        this.login = login;
        next(login.next(methodsLeft) as never);
      },
    });
    await ready;
    this.clearDeadline();
    this.deps.metrics.handshakeDuration.observe({ transport: 'ssh' }, (performance.now() - this.acceptedAt) / 1000);
    // Logged in is not done: a device that never answers the channel open, or never sends
    // its <hello>, must not hold its admission slot, so that phase has a deadline as well.
    this.setDeadline(options.helloTimeout, () => new GatewayError('GW_ERR_TIMEOUT', `no <hello> from the device within ${options.helloTimeout}s of login (channel open included)`));
    await this.holdFirstSession();
    this.clearDeadline();
    this.mode = await this.chooseSessionMode();
    this.own?.setKeepalive(this.mode.mode === 'single');
    this.markConnected();
    this.deps.registry.add(this);
    this.countAccepted();
    this.log.info({ device: this.deviceId, capabilities: this.capabilitiesValue.length, sessionMode: this.mode.mode, sessionModeReason: this.mode.reason }, 'device connected');
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
      const tried = this.login ? ` (${this.login.describe()})` : '';
      return new GatewayError('GW_ERR_AUTH_FAILED', `device ${this.entry?.id} refused the gateway's credentials${tried}`, { cause: err });
    }
    if (err.level === 'client-timeout') {
      const k = this.deps.options.keepalive;
      return new GatewayError('GW_ERR_KEEPALIVE_TIMEOUT', `no answer to ${k?.countMax} keepalive requests sent every ${k?.interval}s`, { cause: err });
    }
    if (this.stateValue === 'connected') return new GatewayError('GW_ERR_DEVICE_CLOSED', `connection failed: ${describeError(err)}`, { cause: err });
    return new GatewayError('GW_ERR_HANDSHAKE_FAILED', `SSH handshake failed: ${describeError(err)}`, { cause: err });
  }

  /**
   * Keeps the device's first NETCONF session for as long as the connection: its hello gives
   * the capabilities, and some stacks (libnetconf2, under Netopeer2) end the whole call-home
   * connection when that session ends, so the gateway never ends it on its own.
   */
  private async holdFirstSession(): Promise<void> {
    const fail = (err: unknown): never => {
      const reason = err instanceof GatewayError ? err : new GatewayError('GW_ERR_NOT_NETCONF', describeError(err));
      this.kill(reason);
      throw reason;
    };
    // Bounded by the session's deadline (helloTimeout), which aborts the signal.
    const channel = await this.openNetconfChannel().catch(fail);
    const own = this.deps.hold(channel, { logger: this.log.child({ device: this.entry?.id }), onFatal: (r) => this.kill(r) });
    this.own = own;
    channel.once('close', () => this.onOwnSessionEnded(own));
    try {
      this.capabilitiesValue = [...(await own.start()).capabilities];
    } catch (err) {
      fail(err);
    }
  }

  private onOwnSessionEnded(own: HeldSession): void {
    if (this.stateValue === 'closed') return;
    const reason = new GatewayError('GW_ERR_DEVICE_CLOSED', 'device ended its first NETCONF session');
    if (this.stateValue === 'connected' && this.mode.mode === 'multiple') {
      // Clients have channels of their own: the connection is still useful.
      this.log.warn({ device: this.entry?.id }, 'device ended its first NETCONF session; the connection stays for client channels');
      own.close(reason);
      this.own = undefined;
      return;
    }
    this.kill(reason);
  }

  /** The inventory's `sessions:` when given, what an earlier connection taught, or a probe. */
  private async chooseSessionMode(): Promise<SessionModeDecision> {
    const id = this.deviceId;
    const setting = this.entry?.sessions;
    if (setting) return { mode: setting, reason: `inventory: sessions: ${setting}` };
    const learned = this.deps.sessionModes.get(id);
    if (learned) return learned;
    const { helloTimeout, maxHelloBytes } = this.deps.options;
    const probe = await probeSecondSession(() => this.openNetconfChannel(), { helloTimeout, maxHelloBytes });
    if (this.signal.aborted) {
      this.deps.sessionModes.learnSingle(id, 'device ended the connection while a second NETCONF session was tried: its first session is lent to one client at a time');
      throw this.signal.reason as GatewayError;
    }
    if (!probe.accepted) return { mode: 'single', reason: `${probe.reason}: its first session is lent to one client at a time` };
    // The probe's <close-session> is under way: a device that drops the whole connection in
    // answer may do so before its channel close reaches us (or without sending one at all).
    this.probeEndedAt = Date.now();
    void probe.ended.then(() => (this.probeEndedAt = Date.now()));
    const reason = 'device accepted a second NETCONF session while the first was held';
    this.deps.sessionModes.learnMultiple(id, reason);
    return { mode: 'multiple', reason };
  }

  /** A client's channel was refused on a `multiple` device: lend the held session from now on. */
  fallBackToSingle(reason: string): HeldSession | undefined {
    if (!this.own || this.mode.mode === 'single' || this.entry?.sessions === 'multiple') return this.held;
    this.mode = { mode: 'single', reason: `${reason}: its first session is lent to one client at a time` };
    this.deps.sessionModes.learnSingle(this.deviceId, this.mode.reason);
    this.own.setKeepalive(true);
    this.log.warn({ device: this.deviceId, sessionMode: 'single', sessionModeReason: this.mode.reason }, 'device session mode changed');
    return this.own;
  }

  /** A device that drops its connection right after the probe's session ended gets the single mode next time. */
  private blameProbe(reason: GatewayError): void {
    if (this.probeEndedAt === undefined || !this.entry) return;
    if (reason.code !== 'GW_ERR_DEVICE_CLOSED' && reason.code !== 'GW_ERR_REPLACED') return;
    const ms = Date.now() - this.probeEndedAt;
    if (ms > PROBE_DROP_WINDOW_MS) return;
    this.deps.sessionModes.learnSingle(
      this.entry.id,
      `device ended its connection ${ms} ms after a second NETCONF session ended: its first session is lent to one client at a time`,
    );
  }

  /** Single mode: the held session is lent; otherwise each client gets a channel of its own. */
  serveClient(client: ClientSession): Promise<SessionResult> {
    return this.held ? serveHeldSession(this.held, client) : serveOnChannel(this, client);
  }

  /** Opens a new `netconf` subsystem channel on this device's SSH connection. */
  openNetconfChannel(): Promise<ClientChannel> {
    return this.channelTurns.open(() => requestNetconfChannel(this.client, this.signal, (why) => this.kill(why)));
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

  protected override onDisconnect(reason: GatewayError): void {
    this.blameProbe(reason);
  }

  protected release(reason: GatewayError): void {
    this.own?.close(reason);
    this.client.end();
    // ssh2's end() waits for its write queue; a device that stopped reading must still go.
    setImmediate(() => this.socket.destroy());
  }
}
