// Metrics of held sessions (one device NETCONF session lent to one client at a time):
// registered on the gateway's own Registry, next to the contract metrics in metrics.ts.
import { Counter, Gauge, type Registry } from 'prom-client';

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
      help: 'NETCONF-level keepalive <get> requests on held sessions, by result (sent, dead)',
      labelNames: ['transport', 'result'],
      registers,
    });
    for (const transport of ['ssh', 'tls'] as const) {
      this.waiting.set({ transport }, 0);
      this.lends.inc({ transport }, 0);
      this.busy.inc({ transport }, 0);
    }
  }
}
