// What a held session reports, as events (the way netconf/meter.ts reports through
// MeterEvents), so its parts never touch prom-client; heldMetricsEvents binds them to metrics.
import { GatewayMetrics, type Transport } from '../../metrics.js';
import type { Direction } from '../../netconf/direction.js';
import type { HeldSessionMetrics } from '../held-metrics.js';

export type KeepaliveResult = 'sent' | 'answered' | 'dead';

export interface HeldEvents {
  /** Wire bytes written toward the client or the device. */
  bytes(direction: Direction, n: number): void;
  /** One whole message passed on (hellos included). */
  message(direction: Direction): void;
  /** A client's reply arrived, `seconds` after its request was sent. */
  rpc(operation: string, seconds: number): void;
  lent(): void;
  /** A client started (+1) or stopped (-1) waiting for the session. */
  waiting(delta: 1 | -1): void;
  busy(): void;
  droppedReply(): void;
  keepalive(result: KeepaliveResult): void;
}

export function heldMetricsEvents(transport: Transport, metrics: GatewayMetrics, held: HeldSessionMetrics): HeldEvents {
  return {
    bytes: (direction, n) => metrics.netconfBytesTotal.inc({ direction }, n),
    message: (direction) => metrics.netconfMessagesTotal.inc({ direction }),
    rpc: (operation, seconds) => metrics.rpcDuration.observe({ operation: GatewayMetrics.operationLabel(operation) }, seconds),
    lent: () => held.lends.inc({ transport }),
    waiting: (delta) => (delta > 0 ? held.waiting.inc({ transport }) : held.waiting.dec({ transport })),
    busy: () => held.busy.inc({ transport }),
    droppedReply: () => held.droppedReplies.inc({ transport }),
    keepalive: (result) => held.keepalives.inc({ transport, result }),
  };
}
