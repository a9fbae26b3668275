// Prometheus metrics. One Registry per gateway (injected, never prom-client's global), so
// several gateways can run in one process (tests) without sharing counts.
// The names and labels are part of the external contract (SPEC.md "Metrics").
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { totalmem } from 'node:os';
import { reasonLabel, type ErrorCode } from './errors.js';

// The documented values of each label. Every counter (and labelled gauge) is exported with
// each of them at 0 from start-up: Prometheus sees a series that first appears at 5 as no
// increase, so without them the first failure after a restart would never reach an alert.
export const TRANSPORTS = ['ssh', 'tls'] as const;
export const CONNECTION_RESULTS = ['accepted', 'unknown_device', 'auth_failed', 'handshake_failed', 'timeout', 'rejected_limit'] as const;
export const CLIENT_SESSION_RESULTS = ['ok', 'auth_failed', 'denied', 'device_unavailable', 'rejected_limit'] as const;
export const DIRECTIONS = ['to_device', 'to_client'] as const;
/**
 * callhome_cluster_forwarded_sessions_total: `direction` out (this replica forwarded a
 * manager's session to the device's owner) or in (it served one another replica forwarded);
 * `result`: ok, the owner's refusals as a client session counts them, `unreachable` (out: the
 * owner could not be reached or answered nothing), `unauthorized` (in: no valid peer
 * certificate), `protocol_error` (a malformed or late request or reply).
 */
export const FORWARDED_DIRECTIONS = ['out', 'in'] as const;
export const FORWARDED_RESULTS = ['ok', 'denied', 'device_unavailable', 'rejected_limit', 'unreachable', 'unauthorized', 'protocol_error'] as const;
export type ForwardedResult = (typeof FORWARDED_RESULTS)[number];
/** The files a reload re-reads (`file` of callhome_config_reload_failures_total). */
export const CONFIG_FILES = ['inventory', 'users'] as const;
/** The codes a connected device can be closed with: each is a `reason` of callhome_device_disconnects_total. */
export const DISCONNECT_CODES = [
  'GW_ERR_DEVICE_CLOSED',
  'GW_ERR_REPLACED',
  'GW_ERR_REMOVED',
  'GW_ERR_KEEPALIVE_TIMEOUT',
  'GW_ERR_IDLE_RELEASE',
  'GW_ERR_TIMEOUT',
  'GW_ERR_PROTOCOL',
  'GW_ERR_FRAMING',
  'GW_ERR_NOT_NETCONF',
  'GW_ERR_SHUTDOWN',
  'GW_ERR_OPERATOR',
  'GW_ERR_SUPERSEDED',
] as const satisfies readonly ErrorCode[];

export type Transport = (typeof TRANSPORTS)[number];
export type ConnectionResult = (typeof CONNECTION_RESULTS)[number];
export type ClientSessionResult = (typeof CLIENT_SESSION_RESULTS)[number];
export type Direction = (typeof DIRECTIONS)[number];

/** Each label of a metric with the values it is exported at from start-up. */
export type LabelValues<L extends string> = { [K in L]: readonly string[] };

/**
 * Exports `metric` at 0 for every combination of the given label values (a counter is
 * incremented by 0, a gauge set to 0). Call it once, right after registering the metric;
 * every labelled counter of the gateway goes through here (test/metrics checks that).
 */
export function zeroSeries<L extends string>(metric: Counter<L> | Gauge<L>, values: LabelValues<L>): void {
  const names = Object.keys(values) as L[];
  const combine = (i: number, labels: Partial<Record<L, string>>): void => {
    if (i === names.length) {
      if (metric instanceof Counter) metric.inc(labels as Record<L, string>, 0);
      else metric.set(labels as Record<L, string>, 0);
      return;
    }
    for (const v of values[names[i]!]) combine(i + 1, { ...labels, [names[i]!]: v });
  };
  combine(0, {});
}

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
  readonly forwardedSessionsTotal: Counter<'direction' | 'result'>;
  /** Live replicas seen (cluster/cluster.ts updates it; 1 standalone). */
  readonly clusterReplicas: Gauge;
  readonly memoryLimit: Gauge;
  readonly openSockets: Gauge;
  readonly openSocketsCeiling: Gauge;
  private sockets: { readonly inUse: number; readonly ceiling: number } = { inUse: 0, ceiling: 0 };

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
    this.deviceClientSessions = new Gauge({
      name: 'callhome_device_client_sessions',
      help: 'Client sessions per device, only for devices that have at least one',
      labelNames: ['device'],
      registers,
    });
    this.forwardedSessionsTotal = new Counter({
      name: 'callhome_cluster_forwarded_sessions_total',
      help: 'Client sessions forwarded between replicas (cluster mode), by direction (out, in) and result',
      labelNames: ['direction', 'result'],
      registers,
    });
    this.clusterReplicas = new Gauge({
      name: 'callhome_cluster_replicas',
      help: 'Live replicas this replica sees in the cluster (1 without cluster mode)',
      registers,
    });
    this.memoryLimit = new Gauge({
      name: 'callhome_memory_limit_bytes',
      help: "Memory the process may use: its cgroup's limit (the container's), else the host's memory",
      registers,
      collect() {
        this.set(memoryLimitBytes());
      },
    });
    const sockets = () => this.sockets;
    this.openSockets = new Gauge({
      name: 'callhome_open_sockets',
      help: 'Connections the gateway holds on all its listeners, counted against limits.maxOpenFiles',
      registers,
      collect() {
        this.set(sockets().inUse);
      },
    });
    this.openSocketsCeiling = new Gauge({
      name: 'callhome_open_sockets_ceiling',
      help: 'The open-socket ceiling (limits.maxOpenFiles, or the open-file limit less a reserve): new connections are refused there',
      registers,
      collect() {
        this.set(sockets().ceiling);
      },
    });
    zeroSeries(this.devicesConnected, { transport: TRANSPORTS });
    zeroSeries(this.deviceFlapsTotal, { transport: TRANSPORTS });
    zeroSeries(this.connectionsTotal, { transport: TRANSPORTS, result: CONNECTION_RESULTS });
    zeroSeries(this.clientSessionsTotal, { result: CLIENT_SESSION_RESULTS });
    zeroSeries(this.netconfMessagesTotal, { direction: DIRECTIONS });
    zeroSeries(this.netconfBytesTotal, { direction: DIRECTIONS });
    zeroSeries(this.deviceDisconnectsTotal, { reason: DISCONNECT_CODES.map(disconnectReason) });
    zeroSeries(this.configReloadFailuresTotal, { file: CONFIG_FILES });
    zeroSeries(this.forwardedSessionsTotal, { direction: FORWARDED_DIRECTIONS, result: FORWARDED_RESULTS });
    this.clientSessionsActive.set(0);
    this.clusterReplicas.set(1);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The socket ceiling the open-socket gauges report (limits/fd-ceiling.ts). */
  watchSockets(source: { readonly inUse: number; readonly ceiling: number }): void {
    this.sockets = source;
  }

  static operationLabel(operation: string | undefined): string {
    return operation && RPC_OPERATIONS.has(operation) ? operation : 'other';
  }
}

/**
 * The `reason` label of callhome_device_disconnects_total for an error code: the code without
 * its GW_ERR_ prefix, in lower case (GW_ERR_KEEPALIVE_TIMEOUT → keepalive_timeout), like the
 * other metrics' result labels and the log's `reason` field.
 */
export function disconnectReason(code: ErrorCode): string {
  return reasonLabel(code);
}

/**
 * The memory this process may use: the cgroup limit where one is set (a container's
 * `resources.limits.memory`), otherwise the machine's memory. Divided into
 * process_resident_memory_bytes, it tells how close the process is to being OOM-killed.
 */
export function memoryLimitBytes(): number {
  const host = totalmem();
  // Node reports 0, or a huge number, when no cgroup limit applies.
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  return constrained > 0 && constrained < host ? constrained : host;
}
