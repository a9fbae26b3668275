// Typed errors with stable codes. A code is what a log line calls `reason` and what a
// metric calls `result`, so callers never parse messages.

export type ErrorCode =
  | 'GW_ERR_CONFIG'
  | 'GW_ERR_LISTEN'
  | 'GW_ERR_USAGE'
  | 'GW_ERR_INVENTORY'
  | 'GW_ERR_USERS'
  | 'GW_ERR_UNKNOWN_DEVICE'
  | 'GW_ERR_AUTH_FAILED'
  | 'GW_ERR_HANDSHAKE_FAILED'
  | 'GW_ERR_TIMEOUT'
  | 'GW_ERR_REJECTED_LIMIT'
  | 'GW_ERR_REPLACED'
  | 'GW_ERR_REMOVED'
  | 'GW_ERR_DEVICE_CLOSED'
  | 'GW_ERR_DEVICE_UNAVAILABLE'
  | 'GW_ERR_CHANNEL_REFUSED'
  | 'GW_ERR_NOT_NETCONF'
  | 'GW_ERR_FRAMING'
  | 'GW_ERR_SHUTDOWN'
  // TLS call home: the device certificate's refusals.
  | 'GW_ERR_CERT_IDENTITY'
  | 'GW_ERR_CERT_EXPIRED'
  | 'GW_ERR_CERT_REVOKED'
  // Hardening: protocol abuse and the admin API.
  | 'GW_ERR_PROTOCOL'
  | 'GW_ERR_UNAUTHORIZED'
  | 'GW_ERR_NOT_FOUND'
  // Liveness and lifecycle.
  | 'GW_ERR_KEEPALIVE_TIMEOUT'
  | 'GW_ERR_IDLE_RELEASE'
  // Operator API: a session ended or a device disconnected on request.
  | 'GW_ERR_OPERATOR'
  // Cluster mode: Redis unreachable, or a device connection another replica took over.
  | 'GW_ERR_CLUSTER_UNAVAILABLE'
  | 'GW_ERR_SUPERSEDED';

export class GatewayError extends Error {
  readonly code: ErrorCode;
  /** Log fields that identify what was refused (e.g. the unknown device's `fingerprint`). */
  readonly fields: Record<string, string | number>;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; fields?: Record<string, string | number> }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.fields = options?.fields ?? {};
  }
}

export function isGatewayError(err: unknown, code?: ErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}

/**
 * The label of a code in logs (`reason`) and metrics (`reason`, `result`): without its
 * GW_ERR_ prefix, in lower case (GW_ERR_KEEPALIVE_TIMEOUT → keepalive_timeout).
 */
export function reasonLabel(code: string): string {
  return code.replace(/^GW_ERR_/, '').toLowerCase();
}

/** A one-line description of any thrown value, for logs and stderr. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
}
