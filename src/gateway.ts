// Builds the gateway's parts from one Config and owns their lifetimes:
// call-home listener → device sessions → registry ← northbound server → splices,
// plus the HTTP server. start() / close() (graceful) / destroy() (immediate).
import { createRequire } from 'node:module';
import { unwatchFile, watchFile, type Stats, type StatsListener } from 'node:fs';
import type { Socket } from 'node:net';
import type { Config } from './config.js';
import { GatewayError, describeError } from './errors.js';
import type { Logger } from './log.js';
import { GatewayMetrics } from './metrics.js';
import { CallHomeListener } from './callhome/listener.js';
import { TlsCallHome } from './callhome/tls.js';
import { HeldSessionMetrics } from './device/held-metrics.js';
import { sshHoldFactory } from './device/hold.js';
import { fingerprintOfKeyBlob } from './device/identity.js';
import { Inventory } from './device/inventory.js';
import { PendingDevices } from './device/pending.js';
import { DeviceHistory } from './device/history.js';
import { releaseWhenIdle } from './device/idle-release.js';
import { DeviceRegistry } from './device/registry.js';
import { DeviceSession } from './device/session.js';
import { HttpServer, type DeviceView } from './http/server.js';
import { Users, loadUsers } from './northbound/auth.js';
import { loadOrCreateHostKey } from './northbound/hostkey.js';
import { NorthboundServer } from './northbound/server.js';
import { buildHardening, type Hardening } from './hardening.js';
import { APPROVALS_FILE, describeCredentials, isFingerprint, loadMergedInventory } from './onboarding/approvals.js';
import { removeStaleTempFiles } from './state/durable-file.js';
import { hostGuard } from './http/host-guard.js';
import { InFlightSessions } from './lifecycle/drain.js';
import { PORT_ASSIGNMENTS_FILE, PortAssignments } from './northbound/port-assignments.js';
import { parsePortRange } from './config.js';
import { hostname } from 'node:os';
import { ClientSessions } from './northbound/sessions.js';
import { operatorActions } from './http/operator.js';
import { disconnectReason } from './metrics.js';
import type { LiveDevice } from './device/live.js';
import type { TlsDeviceSession } from './device/tls-session.js';

export type GatewayState = 'created' | 'starting' | 'running' | 'closing' | 'closed';

export interface GatewayAddresses {
  callhomeSsh: number;
  /** 0 when TLS call home is disabled. */
  callhomeTls: number;
  northbound: number;
  http: number;
  devicePorts: Map<string, number>;
}

/** Whether ssh2's native crypto binding loaded (without it ssh2 runs at about half speed). */
export function sshNativeCryptoAvailable(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    return false;
  }
}

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly registry: DeviceRegistry;
  readonly pending: PendingDevices;
  readonly history = new DeviceHistory();
  readonly inFlight = new InFlightSessions();
  readonly sessions: ClientSessions;
  private readonly hardening: Hardening;
  private approvedIds = new Set<string>();
  private stateValue: GatewayState = 'created';
  private inventoryValue = Inventory.empty();
  private usersValue = Users.empty();
  private callhomeSsh: CallHomeListener | undefined;
  private callhomeTls: TlsCallHome | undefined;
  readonly heldMetrics: HeldSessionMetrics;
  private northbound: NorthboundServer | undefined;
  private http: HttpServer | undefined;
  private readonly handshakes = new Set<DeviceSession>();
  private ports: Omit<GatewayAddresses, 'devicePorts'> = { callhomeSsh: 0, callhomeTls: 0, northbound: 0, http: 0 };
  private watching: Array<[string, StatsListener]> = [];
  private portAssignments: PortAssignments | undefined;
  private assignedPorts = new Map<string, number>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    options: { metrics?: GatewayMetrics } = {},
  ) {
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.registry = new DeviceRegistry(this.metrics);
    this.heldMetrics = new HeldSessionMetrics(this.metrics.registry);
    this.hardening = buildHardening(config, logger, this.metrics);
    this.pending = this.hardening.pending;
    // No cluster mode yet: this replica is the only one, named by its host.
    this.sessions = new ClientSessions(hostname(), this.metrics.deviceClientSessions);
    this.registry.on('added', (device: LiveDevice) => this.history.connected(device.deviceId));
  }

  get state(): GatewayState {
    return this.stateValue;
  }

  get inventory(): Inventory {
    return this.inventoryValue;
  }

  addresses(): GatewayAddresses {
    return { ...this.ports, devicePorts: this.northbound?.devicePorts() ?? new Map() };
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'created') throw new Error(`cannot start a gateway that is ${this.stateValue}`);
    this.stateValue = 'starting';
    const { config, logger } = this;
    try {
      for (const file of removeStaleTempFiles(config.stateDir, [APPROVALS_FILE, PORT_ASSIGNMENTS_FILE])) {
        logger.warn({ file }, 'removed a temporary state file left by a crash');
      }
      this.inventoryValue = this.loadInventory();
      this.usersValue = loadUsers(config.users.file);
      const hostKey = loadOrCreateHostKey(config.northbound.hostKeyFile, fingerprintOfKeyBlob);
      logger.info(
        { file: config.northbound.hostKeyFile, fingerprint: hostKey.fingerprint, generated: hostKey.generated },
        hostKey.generated ? 'generated the northbound host key' : 'loaded the northbound host key',
      );
      const nativeCrypto = sshNativeCryptoAvailable();
      if (nativeCrypto) logger.info({ nativeCrypto }, 'ssh2 native crypto binding in use');
      else logger.warn({ nativeCrypto }, 'ssh2 native crypto binding missing: SSH runs on slower JavaScript crypto');

      this.http = new HttpServer(
        {
          ready: () => this.stateValue === 'running',
          metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
          devices: () => this.deviceViews(),
          pending: () => this.pending.list(),
          hostAllowed: hostGuard(config.http.allowedHosts),
          sessions: () => this.sessions.list(),
          admin: {
            operator: operatorActions({ sessions: this.sessions, registry: this.registry, audit: this.hardening.audit, logger }),
            token: () => this.hardening.adminToken(),
            readToken: () => this.hardening.readToken(),
            requireTokenForReads: config.http.requireTokenForReads || config.http.readToken !== '' || config.http.readTokenFile !== '',
            approve: (fp, body) => this.approve(fp, body),
            reject: (fp) => this.reject(fp),
          },
        },
        logger,
      );
      this.ports.http = await this.http.listen(config.http.host, config.http.port);

      this.northbound = new NorthboundServer({
        hostKey: hostKey.privateKey,
        users: () => this.usersValue,
        inventory: () => this.inventoryValue,
        registry: this.registry,
        metrics: this.metrics,
        inFlight: this.inFlight,
        sessions: this.sessions,
        logger: logger.child({ side: 'northbound' }),
        options: {
          loginGraceTime: config.northbound.loginGraceTime,
          channelOpenTimeout: config.callhome.helloTimeout,
          maxMessageBytes: config.netconf.maxMessageBytes,
          maxHelloBytes: config.netconf.maxHelloBytes,
          keepalive: config.northbound.keepalive,
          waitForDevice: config.northbound.waitForDevice,
        },
        admission: this.hardening.northboundAdmission,
        sshPolicy: this.hardening.sshPolicy,
        sessionCaps: this.hardening.sessionCaps,
        audit: this.hardening.audit,
      });
      const range = parsePortRange(config.northbound.portRange);
      if (range) this.portAssignments = new PortAssignments(config.stateDir, range, logger);
      this.ports.northbound = await this.northbound.listen(config.northbound.host, config.northbound.port, { kind: 'shared' });
      await this.syncDevicePorts();

      this.callhomeSsh = new CallHomeListener('ssh', (socket) => this.onCallHome(socket), logger);
      this.ports.callhomeSsh = await this.callhomeSsh.listen(config.callhome.ssh.host, config.callhome.ssh.port);
      if (config.callhome.tls.enabled) {
        this.callhomeTls = new TlsCallHome({
          config,
          inventory: () => this.inventoryValue,
          pending: this.pending,
          registry: this.registry,
          metrics: this.metrics,
          held: this.heldMetrics,
          logger,
          admit: (socket) => this.hardening.callhomeAdmission.admit(socket, 'tls'),
          onSession: (session) => this.trackAttempt(session),
        });
        this.ports.callhomeTls = await this.callhomeTls.start();
      }

      this.watch(config.inventory.file, () => this.reloadInventory());
      this.watch(config.users.file, () => this.reloadUsers());
      this.stateValue = 'running';
      logger.info(
        {
          callhomeSsh: `${config.callhome.ssh.host}:${this.ports.callhomeSsh}`,
          ...(this.callhomeTls ? { callhomeTls: `${config.callhome.tls.host}:${this.ports.callhomeTls}` } : {}),
          northbound: `${config.northbound.host}:${this.ports.northbound}`,
          http: `${config.http.host}:${this.ports.http}`,
          devicePorts: Object.fromEntries(this.northbound.devicePorts()),
          devices: this.inventoryValue.devices.size,
          users: this.usersValue.size,
          openFileCeiling: this.hardening.fds.ceiling,
        },
        'gateway ready',
      );
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  private onCallHome(socket: Socket): void {
    const ticket = this.hardening.callhomeAdmission.admit(socket);
    if (!ticket) return;
    const session = new DeviceSession(socket, {
      inventory: () => this.inventoryValue,
      pending: this.pending,
      registry: this.registry,
      metrics: this.metrics,
      logger: this.logger.child({ side: 'callhome' }),
      options: {
        loginGraceTime: this.config.callhome.loginGraceTime,
        helloTimeout: this.config.callhome.helloTimeout,
        maxHelloBytes: this.config.netconf.maxHelloBytes,
        sshPolicy: this.hardening.sshPolicy,
        admitDevice: (entry) => this.admitDevice(entry.id),
        keepalive: this.config.callhome.keepalive,
      },
      hold: sshHoldFactory(this.config, this.metrics, this.heldMetrics),
    });
    session.signal.addEventListener('abort', () => {
      const code = (session.signal.reason as GatewayError | undefined)?.code;
      if (session.connectedAt === undefined && (code === 'GW_ERR_HANDSHAKE_FAILED' || code === 'GW_ERR_TIMEOUT')) ticket.failed();
    }, { once: true });
    this.handshakes.add(session);
    session.signal.addEventListener('abort', () => this.handshakes.delete(session), { once: true });
    this.trackAttempt(session);
    session.start().then(
      () => {
        ticket.authenticated();
        this.handshakes.delete(session);
        const periodic = this.inventoryValue.get(session.deviceId)?.periodic;
        if (periodic) releaseWhenIdle(session, periodic.idleTimeout, this.logger.child({ side: 'callhome' }));
      },
      () => this.handshakes.delete(session), // the session logged and counted its own reason
    );
  }

  /**
   * Keeps each known device's history: connects, disconnects, and why an attempt failed
   * (`lastError`, for a device identified by its host key or certificate before it failed).
   */
  private trackAttempt(session: DeviceSession | TlsDeviceSession): void {
    session.once('closed', (reason: GatewayError) => {
      if (session.connectedAt) this.history.disconnected(session.deviceId, reason);
      else {
        const id = identifiedId(session);
        if (id !== undefined && reason.code !== 'GW_ERR_SHUTDOWN') this.history.attemptFailed(id, disconnectReason(reason.code), reason.message);
      }
    });
  }

  private deviceViews(): DeviceView[] {
    const ports = this.northbound?.devicePorts() ?? new Map<string, number>();
    return [...this.inventoryValue.devices.values()].map((entry) => {
      const live = this.registry.get(entry.id);
      return {
        id: entry.id,
        state: live ? 'connected' : 'disconnected',
        transport: live?.transport ?? (entry.tls && entry.hostKeys.length === 0 ? 'tls' : 'ssh'),
        remoteAddress: live?.remoteAddress ?? null,
        connectedAt: live?.connectedAt?.toISOString() ?? null,
        port: ports.get(entry.id) ?? entry.port ?? null,
        sessions: live?.sessions ?? 0,
        capabilities: live ? [...live.capabilities] : [],
        source: this.approvedIds.has(entry.id) ? 'approval' : 'inventory',
        ...this.history.view(entry.id),
      };
    });
  }

  private watch(file: string, onChange: () => void): void {
    // Polling survives editors that replace files and Kubernetes' symlink swaps of ConfigMaps.
    const listener = (curr: Stats, prev: Stats) => {
      if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) onChange();
    };
    watchFile(file, { interval: 1000, persistent: false }, listener);
    this.watching.push([file, listener]);
  }

  /** Re-reads the inventory; a file that fails validation leaves the last good one in force. */
  async reloadInventory(): Promise<boolean> {
    let next: Inventory;
    try {
      next = this.loadInventory();
    } catch (err) {
      this.metrics.configReloadFailuresTotal.inc({ file: 'inventory' });
      this.logger.error({ reason: 'GW_ERR_INVENTORY' }, `inventory not reloaded, the previous one stays in force: ${describeError(err)}`);
      return false;
    }
    const previous = this.inventoryValue;
    this.inventoryValue = next;
    for (const id of previous.devices.keys()) {
      if (!next.devices.has(id)) this.registry.kill(id, new GatewayError('GW_ERR_REMOVED', 'device removed from the inventory'));
    }
    this.history.retain(next.devices.keys());
    await this.syncDevicePorts();
    this.logger.info({ devices: next.devices.size }, 'inventory reloaded');
    return true;
  }

  async reloadUsers(): Promise<boolean> {
    try {
      this.usersValue = loadUsers(this.config.users.file);
    } catch (err) {
      this.metrics.configReloadFailuresTotal.inc({ file: 'users' });
      this.logger.error({ reason: 'GW_ERR_USERS' }, `users not reloaded, the previous ones stay in force: ${describeError(err)}`);
      return false;
    }
    const ended = this.northbound?.revoke(this.usersValue) ?? 0;
    this.logger.info({ users: this.usersValue.size, sessionsEnded: ended }, 'users reloaded');
    return true;
  }

  /** The inventory file merged with the operator's approvals (the file wins on conflict). */
  private loadInventory(): Inventory {
    const { inventory, approvedIds } = loadMergedInventory(this.config.inventory.file, this.hardening.approvals, this.logger, (port) => this.reservedPort(port));
    this.approvedIds = approvedIds;
    // A key the inventory now lists is no longer pending.
    for (const p of this.pending.list()) if (inventory.byHostKey(p.fingerprint)) this.pending.forget(p.fingerprint);
    return inventory;
  }

  /** The device ceiling (limits.maxDevices): a device already connected may always replace itself. */
  private admitDevice(id: string): GatewayError | undefined {
    if (this.registry.size < this.config.limits.maxDevices || this.registry.get(id)) return undefined;
    this.logger.warn({ device: id, reason: 'GW_ERR_REJECTED_LIMIT', ceiling: this.config.limits.maxDevices }, `device ceiling reached (${this.config.limits.maxDevices} connected, limits.maxDevices): refusing ${id}`);
    return new GatewayError('GW_ERR_REJECTED_LIMIT', `device ceiling reached (limits.maxDevices = ${this.config.limits.maxDevices})`);
  }

  /**
   * What a port is to the gateway itself (one of its listeners, or inside northbound.portRange),
   * or undefined: such a port is never given to one device.
   */
  private reservedPort(port: number): string | undefined {
    const { config } = this;
    const own: Array<[string, number]> = [
      ['the SSH call-home port', config.callhome.ssh.port],
      ['the SSH call-home port', this.ports.callhomeSsh],
      ['the northbound shared port', config.northbound.port],
      ['the northbound shared port', this.ports.northbound],
      ['the HTTP port', config.http.port],
      ['the HTTP port', this.ports.http],
      ...(config.callhome.tls.enabled ? ([['the TLS call-home port', config.callhome.tls.port], ['the TLS call-home port', this.ports.callhomeTls]] as Array<[string, number]>) : []),
    ];
    const hit = own.find(([, p]) => p !== 0 && p === port);
    if (hit) return `${hit[0]} of this gateway`;
    const range = parsePortRange(config.northbound.portRange);
    if (range && port >= range[0] && port <= range[1]) return `inside northbound.portRange (${config.northbound.portRange}), where ports are assigned`;
    return undefined;
  }

  /** Why an approval may not have `port`: the gateway's own, or another device's. */
  private approvalPortConflict(port: unknown, id: unknown): string | undefined {
    if (typeof port !== 'number') return undefined; // the store validates the shape
    const reserved = this.reservedPort(port);
    if (reserved) return `port ${port} is ${reserved}`;
    for (const [other, p] of this.northbound?.devicePorts() ?? new Map<string, number>()) {
      if (p === port && other !== id) return `port ${port} belongs to device ${other}`;
    }
    const owner = [...this.inventoryValue.devices.values()].find((e) => e.port === port && e.id !== id);
    return owner ? `port ${port} belongs to device ${owner.id}` : undefined;
  }

  private approve(fingerprint: string, body: unknown): { status: number; body: unknown } {
    if (!isFingerprint(fingerprint)) return { status: 400, body: { error: 'not a SHA256 fingerprint' } };
    const seen = this.hardening.pending.get(fingerprint);
    if (!seen) return { status: 404, body: { error: `no pending device with fingerprint ${fingerprint}` } };
    const id = (body as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && this.inventoryValue.get(id) && !this.approvedIds.has(id)) {
      return { status: 409, body: { error: `device id ${id} is already in the inventory file` } };
    }
    const portConflict = this.approvalPortConflict((body as { port?: unknown } | null)?.port, id);
    if (portConflict) return { status: 409, body: { error: portConflict } };
    let approval;
    try {
      approval = this.hardening.approvals.approve(fingerprint, seen.keyType, body);
    } catch (err) {
      return { status: 400, body: { error: describeError(err) } };
    }
    this.pending.forget(fingerprint);
    this.logger.info({ device: approval.id, fingerprint, keyType: approval.keyType }, 'device approved');
    void this.reloadInventory();
    return {
      status: 201,
      body: { id: approval.id, fingerprint, keyType: approval.keyType, approvedAt: approval.approvedAt, port: approval.port ?? null, credentials: describeCredentials(approval.credentials) },
    };
  }

  private reject(fingerprint: string): { status: number; body: unknown } {
    if (!isFingerprint(fingerprint)) return { status: 400, body: { error: 'not a SHA256 fingerprint' } };
    // Only a key that called (pending) or was approved: the rejected list is not a place
    // any caller can fill with made-up fingerprints.
    if (!this.hardening.pending.get(fingerprint) && !this.hardening.approvals.isApproved(fingerprint)) {
      return { status: 404, body: { error: `no pending or approved device with fingerprint ${fingerprint}` } };
    }
    this.hardening.approvals.reject(fingerprint);
    this.pending.forget(fingerprint);
    this.logger.info({ fingerprint }, 'device rejected for good');
    void this.reloadInventory();
    return { status: 200, body: { fingerprint, state: 'rejected' } };
  }

  /** Opens, moves or closes per-device northbound listeners to match the inventory. */
  private async syncDevicePorts(): Promise<void> {
    const northbound = this.northbound;
    if (!northbound) return;
    if (this.portAssignments) this.assignedPorts = this.portAssignments.assign(this.inventoryValue);
    const current = northbound.devicePorts();
    for (const [id, port] of current) {
      const wanted = this.wantedPort(id);
      if (wanted !== port) await northbound.unlistenDevice(id);
    }
    const open = northbound.devicePorts();
    for (const entry of this.inventoryValue.devices.values()) {
      const wanted = this.wantedPort(entry.id);
      if (wanted === undefined || open.has(entry.id)) continue;
      try {
        const port = await northbound.listen(this.config.northbound.host, wanted, { kind: 'device', deviceId: entry.id });
        this.logger.info({ device: entry.id, port, assigned: entry.port === undefined }, 'device port listening');
      } catch (err) {
        // An inventory file port that cannot be bound stops start-up; an assigned or
        // approved one is logged (a saved approval never stops the gateway).
        if (this.stateValue === 'starting' && entry.port !== undefined && !this.approvedIds.has(entry.id)) throw err;
        this.logger.error({ device: entry.id, port: wanted }, describeError(err));
      }
    }
  }

  /** The northbound port a device should have: its own `port:`, else one from portRange. */
  private wantedPort(id: string): number | undefined {
    return this.inventoryValue.get(id)?.port ?? this.assignedPorts.get(id);
  }

  /**
   * Graceful: refuse new work (readyz 503, listeners closed, handshakes dropped), let RPC
   * replies in flight reach their clients for up to `graceSeconds`, then close what is
   * open. Resolves true after a clean drain, false when the grace ran out. Safe to call twice.
   */
  async close(graceSeconds = this.config.shutdown.grace): Promise<boolean> {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return true;
    this.stateValue = 'closing';
    const deadline = Date.now() + graceSeconds * 1000;
    this.stopWatching();
    // net.Server#close() calls back only once every connection is gone, so stop
    // accepting first, end the sessions, and only then wait for the listeners.
    const listenersClosed = Promise.all([this.callhomeSsh?.close(), this.northbound?.close(), this.callhomeTls?.close()]);
    const reason = new GatewayError('GW_ERR_SHUTDOWN', 'gateway shutting down');
    for (const s of this.handshakes) s.kill(reason);
    const clean = await this.drainClients(graceSeconds);
    // Clients whose sessions just ended usually hang up by themselves; a moment for that
    // lets them print the reason they were given before the SSH disconnect.
    const hangUpBy = Math.min(Date.now() + 1000, deadline);
    while ((this.northbound?.openConnections ?? 0) > 0 && Date.now() < hangUpBy) await new Promise((r) => setTimeout(r, 20));
    this.registry.killAll(reason);
    for (const s of this.handshakes) s.kill(reason);
    this.northbound?.destroy();
    this.callhomeSsh?.destroy();
    this.callhomeTls?.destroy();
    // Clients get an SSH disconnect after their last bytes; one that never closes its end
    // must not hold the process beyond the grace (at least a second for the goodbyes).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([listenersClosed, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(1000, deadline - Date.now()))))]);
    clearTimeout(timer);
    await this.http?.close();
    await this.hardening.audit.close();
    this.stateValue = 'closed';
    return clean;
  }

  private async drainClients(graceSeconds: number): Promise<boolean> {
    const sessions = this.inFlight.size;
    if (sessions === 0) return true;
    const busy = this.inFlight.busy;
    this.logger.info({ sessions, busy, grace: graceSeconds }, 'draining client sessions: idle ones close now, RPCs in flight may finish');
    const started = Date.now();
    const clean = await this.inFlight.drain(graceSeconds);
    if (clean) this.logger.info({ ms: Date.now() - started }, 'client sessions drained');
    else this.logger.warn({ sessions: this.inFlight.size, reason: 'GW_ERR_SHUTDOWN' }, `drain incomplete after ${graceSeconds}s: closing the remaining client sessions`);
    return clean;
  }

  /** Immediate: drop everything. Safe to call twice. */
  destroy(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.stopWatching();
    this.inFlight.abort();
    this.registry.killAll(new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped'));
    for (const s of this.handshakes) s.kill(new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped'));
    this.callhomeSsh?.destroy();
    this.callhomeTls?.destroy();
    this.northbound?.destroy();
    this.http?.destroy();
  }

  private stopWatching(): void {
    for (const [file, listener] of this.watching) unwatchFile(file, listener);
    this.watching = [];
  }
}

/** The device a session was identified as, if it got that far (by host key or certificate). */
function identifiedId(session: DeviceSession | TlsDeviceSession): string | undefined {
  try {
    return session.deviceId;
  } catch {
    return undefined; // not identified: an unknown device, listed in /api/pending instead
  }
}
