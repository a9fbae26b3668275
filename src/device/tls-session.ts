// One device's call-home TLS connection: the gateway is the TLS *client* on a socket the
// device opened (RFC 8071 §4.2 C3), presents its own certificate (C4), identifies the
// device by its certificate (C5/C6, device/../tls/identity.ts) and then holds the one
// NETCONF session the connection carries (RFC 7589), lending it to clients one at a time.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import { identifyCertificate } from '../tls/identity.js';
import type { ClientSession, SessionResult } from './client.js';
import { DeviceConnection } from './connection.js';
import type { HeldSessionMetrics } from './held-metrics.js';
import { HeldSession } from './held/session.js';
import type { Inventory } from '../inventory/inventory.js';
import type { LiveDevice } from './live.js';
import type { PendingDevices } from '../inventory/pending.js';
import type { DeviceRegistry } from './registry.js';
import { serveHeldSession } from './serve-held.js';

/** ECDHE with AEAD only for TLS 1.2; TLS 1.3's suites are all AEAD. */
export const MODERN_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export interface TlsDeviceSessionOptions {
  loginGraceTime: number;
  helloTimeout: number;
  maxHelloBytes: number;
  maxMessageBytes: number;
  waitForDevice: number;
  keepaliveInterval: number;
  drainTimeout: number;
}

export interface TlsDeviceSessionDeps {
  inventory: () => Inventory;
  pending: PendingDevices;
  registry: DeviceRegistry;
  metrics: GatewayMetrics;
  held: HeldSessionMetrics;
  logger: Logger;
  /** The gateway's client certificate and key (PEM). */
  credentials: { cert: string; key: string };
  options: TlsDeviceSessionOptions;
}

/** The peer's certificates, leaf first, from what it sent in the handshake. */
function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cur = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cur && cur.raw && !seen.has(cur.fingerprint256) && out.length < 10) {
    seen.add(cur.fingerprint256);
    out.push(new X509Certificate(cur.raw));
    cur = cur.issuerCertificate;
  }
  return out;
}

export class TlsDeviceSession extends DeviceConnection implements LiveDevice {
  readonly transport = 'tls' as const;
  private tlsSocket: tls.TLSSocket | undefined;
  private id: string | undefined;
  held: HeldSession | undefined;
  readonly sessionMode = { mode: 'single', reason: 'NETCONF over TLS: one session per connection (RFC 7589)' } as const;

  constructor(
    socket: Socket,
    private readonly deps: TlsDeviceSessionDeps,
  ) {
    super(socket, 'tls', deps.logger, deps.metrics);
  }

  get deviceId(): string {
    if (!this.id) throw new Error('device not identified yet');
    return this.id;
  }
  protected get identifiedId(): string | undefined {
    return this.id;
  }
  get capabilities(): readonly string[] {
    return this.held?.capabilities ?? [];
  }
  get sessions(): number {
    return this.held?.clients ?? 0;
  }

  /** TLS handshake, identification and the NETCONF hello; resolves once connected. */
  async start(): Promise<void> {
    const { options } = this.deps;
    this.setDeadline(options.loginGraceTime, () => new GatewayError('GW_ERR_TIMEOUT', `not identified within ${options.loginGraceTime}s`));
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {}); // the TLS socket reports the same failure
    const aborted = new Promise<never>((_, reject) => this.signal.addEventListener('abort', () => reject(this.signal.reason), { once: true }));
    aborted.catch(() => {});
    // RFC 8071 §4.2 C3/C4: TLS client on the accepted socket, with the gateway's certificate.
    const s = tls.connect({
      socket: this.socket,
      cert: this.deps.credentials.cert,
      key: this.deps.credentials.key,
      minVersion: 'TLSv1.2',
      ciphers: MODERN_CIPHERS,
      // The device is identified below against the inventory, not against a host name.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    this.tlsSocket = s;
    s.on('error', (err) => this.kill(this.classify(err)));
    s.on('close', () =>
      this.kill(new GatewayError('GW_ERR_DEVICE_CLOSED', this.stateValue === 'connected' ? 'device closed the connection' : 'device closed the connection during the handshake')),
    );
    await Promise.race([new Promise<void>((resolve) => s.once('secureConnect', () => resolve())), aborted]);

    const verdict = identifyCertificate(peerChain(s), this.deps.inventory().tlsEntries(), (f) => readFileSync(f));
    if (!verdict.ok) {
      if (verdict.unknown) {
        const leaf = s.getPeerX509Certificate();
        this.deps.pending.recordCertificate(verdict.fingerprint, leaf?.subject.replace(/\n/g, ', ') ?? '', leaf?.issuer.replace(/\n/g, ', ') ?? '', this.remoteAddress);
      }
      this.kill(verdict.error);
      throw verdict.error;
    }
    const entry = verdict.entry;
    this.id = entry.id;
    this.log.debug({ device: entry.id, how: verdict.how, protocol: s.getProtocol(), cipher: s.getCipher().name }, 'device certificate accepted');
    this.deps.metrics.handshakeDuration.observe({ transport: 'tls' }, (performance.now() - this.acceptedAt) / 1000);

    this.held = new HeldSession(
      s,
      {
        transport: 'tls',
        metrics: this.deps.metrics,
        held: this.deps.held,
        logger: this.log.child({ device: entry.id }),
        onFatal: (reason) => this.kill(reason),
      },
      {
        maxMessageBytes: options.maxMessageBytes,
        maxHelloBytes: options.maxHelloBytes,
        helloTimeout: options.helloTimeout,
        waitForDevice: options.waitForDevice,
        keepaliveInterval: options.keepaliveInterval,
        drainTimeout: options.drainTimeout,
        maxBase: entry.tls.maxBase,
      },
    );
    try {
      await Promise.race([this.held.start(), aborted]);
    } catch (err) {
      const reason = err instanceof GatewayError ? err : new GatewayError('GW_ERR_NOT_NETCONF', describeError(err));
      this.kill(reason);
      throw reason;
    }
    this.clearDeadline();
    this.markConnected();
    this.deps.registry.add(this);
    this.countAccepted();
    this.log.info({ device: entry.id, capabilities: this.capabilities.length, framing: this.held.framing }, 'device connected');
  }

  private classify(err: Error): GatewayError {
    if (this.stateValue === 'connected') return new GatewayError('GW_ERR_DEVICE_CLOSED', `connection failed: ${describeError(err)}`, { cause: err });
    return new GatewayError('GW_ERR_HANDSHAKE_FAILED', `TLS handshake failed: ${describeError(err)}`, { cause: err });
  }

  /** NETCONF over TLS has no channels: clients are lent the held session (RFC 7589). */
  serveClient(client: ClientSession): Promise<SessionResult> {
    if (!this.held) return Promise.resolve({ kind: 'refused', result: 'device_unavailable', reason: `device ${client.deviceId} is not connected` });
    return serveHeldSession(this.held, client);
  }

  protected release(reason: GatewayError): void {
    this.held?.close(reason);
    this.tlsSocket?.end();
    setImmediate(() => {
      this.tlsSocket?.destroy();
      this.socket.destroy();
    });
  }
}
