// What the registry, the northbound server and the API need from a connected device,
// whichever transport it called home on (SSH: device/session.ts, TLS: device/tls-session.ts).
// Clients are served through serveClient alone: how the session reaches the device (a
// channel of its own, a lent held session) is the device's business (device/client.ts).
import type { GatewayError } from '../errors.js';
import type { ClientSession, SessionResult } from './client.js';
import type { SessionModeDecision } from './session-mode.js';

/**
 * What the northbound needs of a device it serves a client on: a device connected here
 * (LiveDevice) or one another replica holds (cluster/remote-device.ts) alike.
 */
export interface ReachableDevice {
  readonly deviceId: string;
  /** Serves one client session to its end, or refuses it. */
  serveClient(client: ClientSession): Promise<SessionResult>;
}

export interface LiveDevice extends ReachableDevice {
  readonly transport: 'ssh' | 'tls';
  readonly remoteAddress: string;
  readonly signal: AbortSignal;
  readonly connectedAt: Date | undefined;
  readonly capabilities: readonly string[];
  readonly sessions: number;
  /** How client sessions reach the device, and why (device/session-mode.ts). */
  readonly sessionMode: SessionModeDecision;
  kill(reason: GatewayError): void;
}
