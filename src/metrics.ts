// Prometheus metrics. One Registry per gateway (injected, never prom-client's global), so
// several gateways can run in one process (tests) without sharing counts.
// The names and labels are part of the external contract (SPEC.md "Metrics").
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Transport = 'ssh' | 'tls';
export type ConnectionResult =
  | 'accepted'
  | 'unknown_device'
  | 'auth_failed'
  | 'handshake_failed'
  | 'timeout'
  | 'rejected_limit';
export type ClientSessionResult = 'ok' | 'auth_failed' | 'denied' | 'device_unavailable' | 'rejected_limit';
export type Direction = 'to_device' | 'to_client';

/** RPC operations with a label of their own; anything else is counted as `other`. */
export const RPC_OPERATIONS = new Set([
  'get',
  'get-config',
  'edit-config',
  'copy-config',
  'delete-config',
  'lock',
  'unlock',
  'close-session',
  'kill-session',
  'commit',
  'discard-changes',
  'cancel-commit',
  'validate',
  'get-schema',
  'create-subscription',
  'get-data',
  'edit-data',
]);

export class GatewayMetrics {
  readonly registry: Registry;
  readonly devicesConnected: Gauge<'transport'>;
  readonly connectionsTotal: Counter<'transport' | 'result'>;
  readonly handshakeDuration: Histogram<'transport'>;
  readonly clientSessionsActive: Gauge;
  readonly clientSessionsTotal: Counter<'result'>;
  readonly netconfMessagesTotal: Counter<'direction'>;
  readonly netconfBytesTotal: Counter<'direction'>;
  readonly rpcDuration: Histogram<'operation'>;
  readonly deviceDisconnectsTotal: Counter<'reason'>;
  readonly deviceFlapsTotal: Counter<'transport'>;
  readonly configReloadFailuresTotal: Counter<'file'>;
  /** Per device, but only for devices with sessions now (northbound/sessions.ts keeps it). */
  readonly deviceClientSessions: Gauge<'device'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.devicesConnected = new Gauge({
      name: 'callhome_devices_connected',
      help: 'Devices with a live call-home connection',
      labelNames: ['transport'],
      registers,
    });
    this.connectionsTotal = new Counter({
      name: 'callhome_connections_total',
      help: 'Call-home connections by outcome',
      labelNames: ['transport', 'result'],
      registers,
    });
    this.handshakeDuration = new Histogram({
      name: 'callhome_handshake_duration_seconds',
      help: 'Time from TCP accept until the device is logged in to',
      labelNames: ['transport'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.clientSessionsActive = new Gauge({
      name: 'callhome_client_sessions_active',
      help: 'Client sessions currently spliced to a device',
      registers,
    });
    this.clientSessionsTotal = new Counter({
      name: 'callhome_client_sessions_total',
      help: 'Client session attempts by outcome',
      labelNames: ['result'],
      registers,
    });
    this.netconfMessagesTotal = new Counter({
      name: 'callhome_netconf_messages_total',
      help: 'NETCONF messages spliced, by direction',
      labelNames: ['direction'],
      registers,
    });
    this.netconfBytesTotal = new Counter({
      name: 'callhome_netconf_bytes_total',
      help: 'NETCONF bytes spliced (framing included), by direction',
      labelNames: ['direction'],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: 'callhome_rpc_duration_seconds',
      help: 'Time from an <rpc> reaching the gateway until its <rpc-reply> does',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.deviceDisconnectsTotal = new Counter({
      name: 'callhome_device_disconnects_total',
      help: 'Connected devices that went away, by reason (keepalive_timeout, device_closed, replaced, removed, idle_release, shutdown, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.deviceFlapsTotal = new Counter({
      name: 'callhome_device_flaps_total',
      help: 'Device connections that ended within callhome.flapping.window seconds of login while the device was flapping',
      labelNames: ['transport'],
      registers,
    });
    this.configReloadFailuresTotal = new Counter({
      name: 'callhome_config_reload_failures_total',
      help: 'Re-reads of the inventory or users file that were rejected (the last good file stays in force), by file',
      labelNames: ['file'],
      registers,
    });
    for (const file of ['inventory', 'users'] as const) this.configReloadFailuresTotal.inc({ file }, 0);
    this.deviceClientSessions = new Gauge({
      name: 'callhome_device_client_sessions',
      help: 'Client sessions per device, only for devices that have at least one',
      labelNames: ['device'],
      registers,
    });
    // Zero-valued series from the start, so dashboards and alerts see them before traffic.
    for (const transport of ['ssh', 'tls'] as const) {
      this.devicesConnected.set({ transport }, 0);
      this.deviceFlapsTotal.inc({ transport }, 0);
    }
    for (const direction of ['to_device', 'to_client'] as const) {
      this.netconfMessagesTotal.inc({ direction }, 0);
      this.netconfBytesTotal.inc({ direction }, 0);
    }
    this.clientSessionsActive.set(0);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  static operationLabel(operation: string | undefined): string {
    return operation && RPC_OPERATIONS.has(operation) ? operation : 'other';
  }
}

/**
 * The `reason` label of callhome_device_disconnects_total for an error code: the code without
 * its GW_ERR_ prefix, in lower case (GW_ERR_KEEPALIVE_TIMEOUT → keepalive_timeout), like the
 * other metrics' result labels. Logs keep the full code.
 */
export function disconnectReason(code: string): string {
  return code.replace(/^GW_ERR_/, '').toLowerCase();
}
