// Builds the gateway's parts from one Config and owns their lifetimes:
// call-home listeners → device sessions → registry ← northbound server → splices,
// plus the HTTP server. start() / close() (graceful) / destroy() (immediate).
import { clusterMode, type Config } from './config/schema.js';
import { ClusterRedis } from './cluster/redis.js';
import { SharedState } from './cluster/shared-state.js';
import { GatewayError } from './errors.js';
import type { Logger } from './log.js';
import { GatewayMetrics } from './metrics.js';
import { AuditLog } from './audit/audit.js';
import { HeldSessionMetrics } from './device/held-metrics.js';
import type { Inventory } from './inventory/inventory.js';
import type { PendingDevices } from './inventory/pending.js';
import { DeviceHistory } from './device/history.js';
import { DeviceRegistry } from './device/registry.js';
import { SessionModeMemory } from './device/session-mode.js';
import type { FlapDetector } from './device/flapping.js';
import { trackDevices } from './device/tracking.js';
import { DevicePorts, type OwnPorts } from './gateway/device-ports.js';
import type { SshCallHome } from './callhome/ssh.js';
import type { TlsCallHome } from './callhome/tls.js';
import type { HttpServer } from './http/server.js';
import type { NorthboundServer } from './northbound/server.js';
import { InFlightSessions, drainClientSessions } from './lifecycle/drain.js';
import { buildLimits, type Limits } from './limits/build.js';
import { PORT_ASSIGNMENTS_FILE } from './northbound/port-assignments.js';
import { ClientSessions } from './northbound/sessions.js';
import { APPROVALS_FILE } from './onboarding/approvals.js';
import { Onboarding } from './onboarding/service.js';
import { sshPolicy, type SshPolicy } from './ssh/policy.js';
import { logSshRuntime } from './ssh/runtime.js';
import { logHeapSettings } from './heap.js';
import { removeStaleTempFiles } from './state/durable-file.js';
import { sshCallHome, tlsCallHome } from './gateway/callhome.js';
import { ConfigFiles } from './gateway/config-files.js';
import { gatewayHttpServer } from './gateway/http.js';
import { clientSessionLimits, gatewayNorthboundServer, northboundHostKey } from './gateway/northbound.js';
import type { GatewayParts } from './gateway/parts.js';
import { Cluster, requireSharedHostKey } from './cluster/cluster.js';
import { Forwarding } from './cluster/forwarding.js';

export { sshNativeCryptoAvailable, sshPacketPathPatched } from './ssh/internals.js';

export type GatewayState = 'created' | 'starting' | 'running' | 'closing' | 'closed';

export interface GatewayAddresses extends OwnPorts {
  /** callhomeTls: 0 when TLS call home is disabled. */
  devicePorts: Map<string, number>;
  /** Where forwarded sessions are accepted (cluster mode only). */
  peer?: number;
}

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly registry: DeviceRegistry;
  readonly pending: PendingDevices;
  readonly history = new DeviceHistory();
  private readonly sessionModes = new SessionModeMemory();
  private readonly flaps: FlapDetector;
  readonly inFlight = new InFlightSessions();
  readonly sessions: ClientSessions;
  private readonly limits: Limits;
  private readonly sshPolicy: SshPolicy;
  private readonly audit: AuditLog;
  private readonly onboarding: Onboarding;
  private readonly devicePorts: DevicePorts;
  private readonly files: ConfigFiles;
  private readonly parts: GatewayParts;
  /** Cluster mode: approvals, pending devices and assigned ports shared through Redis. */
  private readonly shared: SharedState | undefined;
  private stateValue: GatewayState = 'created';
  private callhomeSsh: SshCallHome | undefined;
  private callhomeTls: TlsCallHome | undefined;
  readonly heldMetrics: HeldSessionMetrics;
  private northbound: NorthboundServer | undefined;
  private http: HttpServer | undefined;
  /** Cluster mode only (cluster.redis.url set). */
  private cluster: Cluster | undefined;
  /** Sessions forwarded between replicas (cluster mode only). */
  private forwarding: Forwarding | undefined;
  private peerPort: number | undefined;
  private readonly startedAt = new Date();
  private ports: OwnPorts = { callhomeSsh: 0, callhomeTls: 0, northbound: 0, http: 0 };

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    options: { metrics?: GatewayMetrics } = {},
  ) {
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.registry = new DeviceRegistry(this.metrics);
    this.heldMetrics = new HeldSessionMetrics(this.metrics.registry);
    this.limits = buildLimits(config, logger, this.metrics);
    this.sshPolicy = sshPolicy(config.ssh);
    this.audit = new AuditLog({ enabled: config.audit.enabled, file: config.audit.file || undefined });
    this.shared = clusterMode(config) ? new SharedState(new ClusterRedis(config, logger.child({ component: 'cluster' })), logger) : undefined;
    this.files = new ConfigFiles({
      config,
      logger,
      metrics: this.metrics,
      loadInventory: () => this.onboarding.loadInventory(),
      inventoryChanged: (next, previous) => this.inventoryChanged(next, previous),
      usersChanged: (users) => this.northbound?.revoke(users) ?? 0,
    });
    this.devicePorts = new DevicePorts({
      config,
      logger,
      inventory: () => this.inventory,
      ownPorts: () => this.ports,
      isApproved: (id) => this.onboarding.isApproved(id),
      shared: this.shared,
    });
    this.onboarding = new Onboarding({
      config,
      logger,
      inventory: () => this.inventory,
      reservedPort: (port) => this.devicePorts.reservedPort(port),
      devicePorts: () => this.devicePorts.listening(),
      changed: () => void this.reloadInventory(),
      shared: this.shared,
    });
    this.pending = this.onboarding.pending;
    this.sessions = new ClientSessions(config.cluster.replicaId, this.metrics.deviceClientSessions);
    this.flaps = trackDevices(config, this.registry, this.history, this.metrics, logger);
    this.parts = {
      config,
      logger,
      metrics: this.metrics,
      heldMetrics: this.heldMetrics,
      registry: this.registry,
      history: this.history,
      sessionModes: this.sessionModes,
      flaps: this.flaps,
      inFlight: this.inFlight,
      sessions: this.sessions,
      limits: this.limits,
      sshPolicy: this.sshPolicy,
      audit: this.audit,
      onboarding: this.onboarding,
      devicePorts: this.devicePorts,
      inventory: () => this.inventory,
      users: () => this.files.users,
      running: () => this.stateValue === 'running',
      cluster: () => this.cluster,
      startedAt: this.startedAt,
    };
  }

  get state(): GatewayState {
    return this.stateValue;
  }

  get inventory(): Inventory {
    return this.files.inventory;
  }

  addresses(): GatewayAddresses {
    return { ...this.ports, devicePorts: this.northbound?.devicePorts() ?? new Map(), ...(this.peerPort !== undefined ? { peer: this.peerPort } : {}) };
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'created') throw new Error(`cannot start a gateway that is ${this.stateValue}`);
    this.stateValue = 'starting';
    const { config, logger } = this;
    try {
      for (const file of removeStaleTempFiles(config.stateDir, [APPROVALS_FILE, PORT_ASSIGNMENTS_FILE])) {
        logger.warn({ file }, 'removed a temporary state file left by a crash');
      }
      // Refuse a missing shared host key before waiting on Redis (a config error, exit 2).
      if (clusterMode(config)) requireSharedHostKey(config);
      if (this.shared) {
        await this.shared.redis.connect();
        await this.shared.start();
        this.shared.on('approvals', () => void this.reloadInventory());
        this.shared.on('ports', () => void this.devicePorts.sync(false).catch(() => undefined));
      }
      this.files.load();
      // One Redis connection per replica: ownership shares the replicated state's.
      if (this.shared) this.cluster = await Cluster.start({ config, logger, registry: this.registry, metrics: this.metrics, redis: this.shared.redis });
      const hostKey = northboundHostKey(this.parts);
      logSshRuntime(logger);
      logHeapSettings(logger);

      this.http = gatewayHttpServer(this.parts);
      this.ports.http = await this.http.listen(config.http.host, config.http.port);

      if (this.cluster) {
        this.forwarding = new Forwarding({
          config,
          logger,
          ownership: this.cluster.ownership,
          registry: this.registry,
          users: () => this.files.users,
          metrics: this.metrics,
          limits: clientSessionLimits(config),
          sessionCaps: this.limits.sessionCaps,
          inFlight: this.inFlight,
          closing: () => this.stateValue === 'closing' || this.stateValue === 'closed',
        });
        this.peerPort = await this.forwarding.listen();
      }
      this.northbound = gatewayNorthboundServer(this.parts, hostKey, this.forwarding?.directory);
      this.devicePorts.attach(this.northbound);
      this.ports.northbound = await this.northbound.listen(config.northbound.host, config.northbound.port, { kind: 'shared' });
      await this.devicePorts.sync(true);

      this.callhomeSsh = sshCallHome(this.parts);
      this.ports.callhomeSsh = await this.callhomeSsh.start();
      if (config.callhome.tls.enabled) {
        this.callhomeTls = tlsCallHome(this.parts);
        this.ports.callhomeTls = await this.callhomeTls.start();
      }

      this.files.watch();
      this.stateValue = 'running';
      logger.info(
        {
          callhomeSsh: `${config.callhome.ssh.host}:${this.ports.callhomeSsh}`,
          ...(this.callhomeTls ? { callhomeTls: `${config.callhome.tls.host}:${this.ports.callhomeTls}` } : {}),
          northbound: `${config.northbound.host}:${this.ports.northbound}`,
          http: `${config.http.host}:${this.ports.http}`,
          ...(this.peerPort !== undefined ? { peerListener: `${config.cluster.peer.host}:${this.peerPort}` } : {}),
          devicePorts: Object.fromEntries(this.northbound.devicePorts()),
          devices: this.inventory.devices.size,
          users: this.files.users.size,
          openFileCeiling: this.limits.fds.ceiling,
        },
        'gateway ready',
      );
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Re-reads the inventory; a file that fails validation leaves the last good one in force. */
  reloadInventory(): Promise<boolean> {
    return this.files.reloadInventory();
  }

  reloadUsers(): Promise<boolean> {
    return this.files.reloadUsers();
  }

  private async inventoryChanged(next: Inventory, previous: Inventory): Promise<void> {
    for (const id of previous.devices.keys()) {
      if (!next.devices.has(id)) this.registry.kill(id, new GatewayError('GW_ERR_REMOVED', 'device removed from the inventory'));
    }
    this.history.retain(next.devices.keys());
    this.sessionModes.retain(next.devices.keys());
    this.flaps.retain(next.devices.keys());
    await this.devicePorts.sync(this.stateValue === 'starting');
  }

  /**
   * Graceful: refuse new work (readyz 503, listeners closed, handshakes dropped), let RPC
   * replies in flight reach their clients for up to `graceSeconds`, then close what is
   * open. Resolves true after a clean drain, false when the grace ran out. Safe to call twice.
   */
  async close(graceSeconds = this.config.shutdown.grace): Promise<boolean> {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return true;
    this.stateValue = 'closing';
    this.devicePorts.detach();
    const deadline = Date.now() + graceSeconds * 1000;
    this.files.stopWatching();
    // net.Server#close() calls back only once every connection is gone, so stop
    // accepting first (which drops devices still in their handshake), end the sessions,
    // and only then wait for the listeners.
    const listenersClosed = Promise.all([this.callhomeSsh?.close(), this.northbound?.close(), this.callhomeTls?.close(), this.forwarding?.close()]);
    const reason = new GatewayError('GW_ERR_SHUTDOWN', 'gateway shutting down');
    const clean = await drainClientSessions(this.inFlight, graceSeconds, this.logger);
    // Clients whose sessions just ended usually hang up by themselves; a moment for that
    // lets them print the reason they were given before the SSH disconnect.
    const hangUpBy = Math.min(Date.now() + 1000, deadline);
    while ((this.northbound?.openConnections ?? 0) > 0 && Date.now() < hangUpBy) await new Promise((r) => setTimeout(r, 20));
    this.registry.killAll(reason);
    await this.cluster?.close();
    this.forwarding?.destroy();
    this.northbound?.destroy();
    this.callhomeSsh?.destroy(reason);
    this.callhomeTls?.destroy();
    // Clients get an SSH disconnect after their last bytes; one that never closes its end
    // must not hold the process beyond the grace (at least a second for the goodbyes).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([listenersClosed, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(1000, deadline - Date.now()))))]);
    clearTimeout(timer);
    await this.http?.close();
    await this.shared?.close();
    await this.shared?.redis.close();
    await this.audit.close();
    this.stateValue = 'closed';
    return clean;
  }

  /** Immediate: drop everything. Safe to call twice. */
  destroy(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.files.stopWatching();
    this.devicePorts.detach();
    this.inFlight.abort();
    this.registry.killAll(new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped'));
    this.cluster?.destroy();
    this.forwarding?.destroy();
    this.callhomeSsh?.destroy();
    this.callhomeTls?.destroy();
    this.northbound?.destroy();
    this.http?.destroy();
    this.shared?.redis.destroy();
  }
}
