// Metrics of held sessions (one device NETCONF session lent to one client at a time):
// registered on the gateway's own Registry, next to the contract metrics in metrics.ts.
import { Counter, Gauge, type Registry } from 'prom-client';
import { TRANSPORTS, zeroSeries } from '../metrics.js';

/** The `result` values of callhome_held_session_keepalives_total. */
export const HELD_KEEPALIVE_RESULTS = ['sent', 'answered', 'dead'] as const;

export class HeldSessionMetrics {
  readonly waiting: Gauge<'transport'>;
  readonly lends: Counter<'transport'>;
  readonly busy: Counter<'transport'>;
  readonly droppedReplies: Counter<'transport'>;
  readonly keepalives: Counter<'transport' | 'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.waiting = new Gauge({
      name: 'callhome_held_session_waiting_clients',
      help: 'Client sessions waiting for a held device session that is lent to another client',
      labelNames: ['transport'],
      registers,
    });
    this.lends = new Counter({
      name: 'callhome_held_session_lends_total',
      help: 'Times a held device session was lent to a client',
      labelNames: ['transport'],
      registers,
    });
    this.busy = new Counter({
      name: 'callhome_held_session_busy_total',
      help: 'Client sessions refused because the held device session stayed lent to another client',
      labelNames: ['transport'],
      registers,
    });
    this.droppedReplies = new Counter({
      name: 'callhome_held_session_dropped_replies_total',
      help: 'Replies to clients that had already left, drained from a held session and dropped',
      labelNames: ['transport'],
      registers,
    });
    this.keepalives = new Counter({
      name: 'callhome_held_session_keepalives_total',
      help: 'NETCONF-level keepalive <get> requests on held sessions, by result (sent, answered, dead)',
      labelNames: ['transport', 'result'],
      registers,
    });
    zeroSeries(this.waiting, { transport: TRANSPORTS });
    zeroSeries(this.lends, { transport: TRANSPORTS });
    zeroSeries(this.busy, { transport: TRANSPORTS });
    zeroSeries(this.droppedReplies, { transport: TRANSPORTS });
    zeroSeries(this.keepalives, { transport: TRANSPORTS, result: HELD_KEEPALIVE_RESULTS });
  }
}
