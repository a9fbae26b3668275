// What the registry, the northbound server and the API need from a connected device,
// whichever transport it called home on (SSH: device/session.ts, TLS: device/tls-session.ts).
import type { ClientChannel } from 'ssh2';
import type { GatewayError } from '../errors.js';
import type { HeldSession } from './held-session.js';
import type { SessionModeDecision } from './session-mode.js';

export interface LiveDevice {
  readonly transport: 'ssh' | 'tls';
  readonly deviceId: string;
  readonly remoteAddress: string;
  readonly signal: AbortSignal;
  readonly connectedAt: Date | undefined;
  readonly capabilities: readonly string[];
  readonly sessions: number;
  /** Present when the device offers one NETCONF session, lent to one client at a time. */
  readonly held?: HeldSession | undefined;
  /** How client sessions reach the device, and why (device/session-mode.ts). */
  readonly sessionMode: SessionModeDecision;
  /** A client's channel was refused: lend the held session from now on, if there is one. */
  fallBackToSingle?(reason: string): HeldSession | undefined;
  kill(reason: GatewayError): void;
  openNetconfChannel(): Promise<ClientChannel>;
  trackSession(): () => void;
}
