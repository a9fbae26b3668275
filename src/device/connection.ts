// What the SSH and TLS device sessions share: one call-home connection's state, its login
// deadline, and the one place it ends (kill), counted and logged once for its reason.
// The AbortController's reason (a GatewayError) is the log reason and the metric result.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { disconnectReason, type ConnectionResult, type GatewayMetrics } from '../metrics.js';

export type DeviceState = 'handshake' | 'connected' | 'closed';

/** The connection result of a refusal, by its code (anything else: handshake_failed). */
const RESULT_OF_CODE: Partial<Record<ErrorCode, ConnectionResult>> = {
  GW_ERR_UNKNOWN_DEVICE: 'unknown_device',
  GW_ERR_AUTH_FAILED: 'auth_failed',
  GW_ERR_CERT_IDENTITY: 'auth_failed',
  GW_ERR_CERT_EXPIRED: 'auth_failed',
  GW_ERR_CERT_REVOKED: 'auth_failed',
  GW_ERR_TIMEOUT: 'timeout',
  GW_ERR_REJECTED_LIMIT: 'rejected_limit',
};

export function connectionResult(code: ErrorCode): ConnectionResult {
  return RESULT_OF_CODE[code] ?? 'handshake_failed';
}

export abstract class DeviceConnection extends EventEmitter {
  abstract readonly transport: 'ssh' | 'tls';
  readonly remoteAddress: string;
  readonly remotePort: number;
  protected readonly abortController = new AbortController();
  protected readonly log: Logger;
  protected stateValue: DeviceState = 'handshake';
  private connectedAtValue: Date | undefined;
  private deadline: NodeJS.Timeout | undefined;
  protected readonly acceptedAt = performance.now();

  constructor(
    protected readonly socket: Socket,
    transport: 'ssh' | 'tls',
    logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    super();
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.remotePort = socket.remotePort ?? 0;
    this.log = logger.child({ remoteAddress: this.remoteAddress, remotePort: this.remotePort, transport });
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }
  get state(): DeviceState {
    return this.stateValue;
  }
  get connectedAt(): Date | undefined {
    return this.connectedAtValue;
  }

  /** The device id once identified, for the logs. */
  protected abstract get identifiedId(): string | undefined;

  /** Kills the connection for `reason` unless the next deadline or connected comes first. */
  protected setDeadline(seconds: number, reason: () => GatewayError): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.kill(reason()), seconds * 1000);
  }

  protected clearDeadline(): void {
    clearTimeout(this.deadline);
  }

  /** From handshake to connected: counted as accepted (the caller adds it to the registry). */
  protected markConnected(): void {
    this.stateValue = 'connected';
    this.connectedAtValue = new Date();
  }

  protected countAccepted(): void {
    this.metrics.connectionsTotal.inc({ transport: this.transport, result: 'accepted' });
  }

  /** Called once when a connected device's connection ends, before it is counted. */
  protected onDisconnect(_reason: GatewayError): void {}

  /** Releases the transport (sockets, held session); called once, after the signal aborted. */
  protected abstract release(reason: GatewayError): void;

  /** Closes the connection exactly once, for the given reason. Safe to call again. */
  kill(reason: GatewayError): void {
    if (this.stateValue === 'closed') return;
    const wasConnected = this.stateValue === 'connected';
    this.stateValue = 'closed';
    clearTimeout(this.deadline);
    if (!wasConnected) {
      const result = connectionResult(reason.code);
      this.metrics.connectionsTotal.inc({ transport: this.transport, result });
      this.log.warn({ device: this.identifiedId, ...reason.fields, reason: reason.code, result }, `call-home connection refused: ${reason.message}`);
    } else {
      this.onDisconnect(reason);
      this.metrics.deviceDisconnectsTotal.inc({ reason: disconnectReason(reason.code) });
      this.log.info({ device: this.identifiedId, ...reason.fields, reason: reason.code }, `device disconnected: ${reason.message}`);
    }
    this.abortController.abort(reason);
    this.release(reason);
    this.emit('closed', reason);
  }
}
