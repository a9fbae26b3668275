// What a held session is configured with and what it is given.
import type { GatewayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { GatewayMetrics, Transport } from '../../metrics.js';
import type { HeldSessionMetrics } from '../held-metrics.js';

export interface HeldSessionOptions {
  maxMessageBytes: number;
  maxHelloBytes: number;
  /** Seconds to wait for the device's <hello>, and for a client's. */
  helloTimeout: number;
  /** Seconds a client waits for the session while another client holds it; 0 refuses at once. */
  waitForDevice: number;
  /** Seconds between NETCONF-level keepalives (<get> with an empty filter) while idle; 0 = off. */
  keepaliveInterval: number;
  /** Seconds the device may take to answer what a departed client asked before it is dropped. */
  drainTimeout: number;
  /** Highest base the gateway offers the device: '1.0' keeps end-of-message framing. */
  maxBase: '1.0' | '1.1';
}

export interface HeldSessionDeps {
  transport: Transport;
  metrics: GatewayMetrics;
  held: HeldSessionMetrics;
  logger: Logger;
  /** The device session is unusable (framing broken, keepalive unanswered, drain timeout). */
  onFatal: (reason: GatewayError) => void;
}
