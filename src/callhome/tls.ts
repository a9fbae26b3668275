// TLS call home (RFC 8071 §4.2) on its own listener (IANA netconf-ch-tls, 4335): every
// accepted socket becomes a TlsDeviceSession. Owns the listener and the sessions still in
// their handshake; connected ones belong to the registry.
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { TlsDeviceSession, type TlsDeviceSessionDeps } from '../device/tls-session.js';
import { loadGatewayTlsCredentials } from '../tls/gateway-credentials.js';
import type { AdmissionTicket } from '../limits/admission.js';
import { CallHomeListener } from './listener.js';

/** What every TLS device session needs, plus the configuration and the admission limits. */
export interface TlsCallHomeDeps extends Omit<TlsDeviceSessionDeps, 'credentials' | 'options'> {
  config: Config;
  /** The call-home admission limits shared with the SSH listener (undefined: refused at accept). */
  admit: (socket: Socket) => AdmissionTicket | undefined;
  /** Sees every session at its start (the gateway keeps each device's history from it). */
  onSession?: (session: TlsDeviceSession) => void;
}

export class TlsCallHome {
  private listener: CallHomeListener | undefined;
  private readonly handshakes = new Set<TlsDeviceSession>();

  constructor(private readonly deps: TlsCallHomeDeps) {}

  /** Loads (or creates) the gateway's client certificate and listens; resolves with the port. */
  async start(): Promise<number> {
    const { config, logger } = this.deps;
    const credentials = loadGatewayTlsCredentials(config);
    logger.info({ file: credentials.certFile, generated: credentials.generated }, 'gateway TLS client certificate');
    this.listener = new CallHomeListener('tls', (socket) => this.onSocket(socket, credentials), logger);
    return this.listener.listen(config.callhome.tls.host, config.callhome.tls.port);
  }

  private onSocket(socket: Socket, credentials: { cert: string; key: string }): void {
    const { config } = this.deps;
    const ticket = this.deps.admit(socket);
    if (!ticket) return;
    const session = new TlsDeviceSession(socket, {
      inventory: this.deps.inventory,
      pending: this.deps.pending,
      registry: this.deps.registry,
      metrics: this.deps.metrics,
      held: this.deps.held,
      logger: this.deps.logger.child({ side: 'callhome' }),
      credentials,
      options: {
        loginGraceTime: config.callhome.loginGraceTime,
        helloTimeout: config.callhome.helloTimeout,
        maxHelloBytes: config.netconf.maxHelloBytes,
        maxMessageBytes: config.netconf.maxMessageBytes,
        waitForDevice: config.northbound.waitForDevice,
        keepaliveInterval: config.callhome.heldSession.keepaliveInterval,
        drainTimeout: config.callhome.heldSession.drainTimeout,
      },
    });
    this.deps.onSession?.(session);
    this.handshakes.add(session);
    const done = () => this.handshakes.delete(session);
    session.signal.addEventListener('abort', done, { once: true });
    session.start().then(
      () => {
        ticket.authenticated();
        done();
      },
      () => {
        // Only what a stranger can cause counts against its source: a broken handshake or a miss
        // of the deadline (not a refused certificate, which is listed in /api/pending instead).
        const code = (session.signal.reason as GatewayError | undefined)?.code;
        if (code === 'GW_ERR_HANDSHAKE_FAILED' || code === 'GW_ERR_TIMEOUT') ticket.failed();
        done(); // the session logged and counted its own reason
      },
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

  destroy(): void {
    for (const s of this.handshakes) s.kill(new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped'));
    this.listener?.destroy();
  }
}
