// Builds held sessions for SSH devices that allow one NETCONF session only (inventory
// `sessions: single`): the first `netconf` channel is kept and lent to one client at a time,
// exactly as a TLS device's only session is (device/held/session.ts).
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import type { HeldSessionMetrics } from './held-metrics.js';
import { HeldSession } from './held/session.js';

export type HoldFactory = (channel: Duplex, ctx: { logger: Logger; onFatal: (reason: GatewayError) => void }) => HeldSession;

export function sshHoldFactory(config: Config, metrics: GatewayMetrics, held: HeldSessionMetrics): HoldFactory {
  return (channel, ctx) =>
    new HeldSession(
      channel,
      { transport: 'ssh', metrics, held, logger: ctx.logger, onFatal: ctx.onFatal },
      {
        maxMessageBytes: config.netconf.maxMessageBytes,
        maxHelloBytes: config.netconf.maxHelloBytes,
        helloTimeout: config.callhome.helloTimeout,
        waitForDevice: config.northbound.waitForDevice,
        keepaliveInterval: config.callhome.heldSession.keepaliveInterval,
        drainTimeout: config.callhome.heldSession.drainTimeout,
        maxBase: '1.1',
      },
    );
}
