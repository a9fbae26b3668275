// What the registry, the northbound server and the API need from a connected device,
// whichever transport it called home on (SSH: device/session.ts, TLS: device/tls-session.ts).
// Clients are served through serveClient alone: how the session reaches the device (a
// channel of its own, a lent held session) is the device's business (device/client.ts).
import type { GatewayError } from '../errors.js';
import type { ClientSession, SessionResult } from './client.js';
import type { SessionModeDecision } from './session-mode.js';

export interface LiveDevice {
  readonly transport: 'ssh' | 'tls';
  readonly deviceId: string;
  readonly remoteAddress: string;
  readonly signal: AbortSignal;
  readonly connectedAt: Date | undefined;
  readonly capabilities: readonly string[];
  readonly sessions: number;
  /** How client sessions reach the device, and why (device/session-mode.ts). */
  readonly sessionMode: SessionModeDecision;
  /** Serves one client session to its end, or refuses it. */
  serveClient(client: ClientSession): Promise<SessionResult>;
  kill(reason: GatewayError): void;
}
