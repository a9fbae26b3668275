// SSH call home (RFC 8071 §3.1) on its own listener (IANA netconf-ch-ssh, 4334): every
// accepted socket becomes a DeviceSession. Owns the listener and the sessions still in
// their handshake; connected ones belong to the registry. The twin of callhome/tls.ts.
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { HeldSessionMetrics } from '../device/held-metrics.js';
import { sshHoldFactory } from '../device/hold.js';
import { releaseWhenIdle } from '../device/idle-release.js';
import { DeviceSession, type DeviceSessionDeps } from '../device/session.js';
import type { AdmissionTicket } from '../limits/admission.js';
import { CallHomeListener } from './listener.js';

/** What every SSH device session needs, plus the configuration and the limits. */
export interface SshCallHomeDeps extends Omit<DeviceSessionDeps, 'options' | 'hold'> {
  config: Config;
  held: HeldSessionMetrics;
  sshPolicy: DeviceSessionDeps['options']['sshPolicy'];
  /** The call-home admission limits shared with the TLS listener (undefined: refused at accept). */
  admit: (socket: Socket) => AdmissionTicket | undefined;
  /** The device ceiling: an error refuses the device after it is identified. */
  admitDevice: (id: string) => GatewayError | undefined;
  /** Sees every session at its start (the gateway keeps each device's history from it). */
  onSession?: (session: DeviceSession) => void;
}

export class SshCallHome {
  private listener: CallHomeListener | undefined;
  private readonly handshakes = new Set<DeviceSession>();

  constructor(private readonly deps: SshCallHomeDeps) {}

  /** Listens; resolves with the port. */
  start(): Promise<number> {
    const { config, logger } = this.deps;
    this.listener = new CallHomeListener('ssh', (socket) => this.onSocket(socket), logger);
    return this.listener.listen(config.callhome.ssh.host, config.callhome.ssh.port);
  }

  private onSocket(socket: Socket): void {
    const { config, metrics } = this.deps;
    const ticket = this.deps.admit(socket);
    if (!ticket) return;
    const logger = this.deps.logger.child({ side: 'callhome' });
    const session = new DeviceSession(socket, {
      inventory: this.deps.inventory,
      pending: this.deps.pending,
      registry: this.deps.registry,
      metrics,
      logger,
      options: {
        loginGraceTime: config.callhome.loginGraceTime,
        helloTimeout: config.callhome.helloTimeout,
        maxHelloBytes: config.netconf.maxHelloBytes,
        sshPolicy: this.deps.sshPolicy,
        admitDevice: (entry) => this.deps.admitDevice(entry.id),
        keepalive: config.callhome.keepalive,
      },
      hold: sshHoldFactory(config, metrics, this.deps.held),
      sessionModes: this.deps.sessionModes,
    });
    // Only what a stranger can cause counts against its source: a broken handshake or a miss of the deadline.
    session.signal.addEventListener(
      'abort',
      () => {
        const code = (session.signal.reason as GatewayError | undefined)?.code;
        if (session.connectedAt === undefined && (code === 'GW_ERR_HANDSHAKE_FAILED' || code === 'GW_ERR_TIMEOUT')) ticket.failed();
      },
      { once: true },
    );
    this.handshakes.add(session);
    const done = () => this.handshakes.delete(session);
    session.signal.addEventListener('abort', done, { once: true });
    this.deps.onSession?.(session);
    session.start().then(
      () => {
        ticket.authenticated();
        done();
        const periodic = this.deps.inventory().get(session.deviceId)?.periodic;
        if (periodic) releaseWhenIdle(session, periodic.idleTimeout, logger);
      },
      done, // the session logged and counted its own reason
    );
  }

  /**
   * Stops accepting and drops devices still in their handshake; connected devices stay (the
   * gateway drains their clients first, then calls destroy()). Resolves once every socket is gone.
   */
  close(): Promise<void> {
    const closed = this.listener?.close() ?? Promise.resolve();
    for (const s of this.handshakes) s.kill(new GatewayError('GW_ERR_SHUTDOWN', 'gateway shutting down'));
    return closed;
  }

  destroy(reason = new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped')): void {
    for (const s of this.handshakes) s.kill(reason);
    this.listener?.destroy();
  }
}
