// One client session as a device sees it: what the northbound hands over, and what comes
// back. Every kind of device (SSH with channels, a held session lent to one client at a
// time, later a device owned by another replica) serves a client through this alone, so the
// northbound never knows which kind it reached.
import type { ServerChannel } from 'ssh2';
import type { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClientSessionResult, GatewayMetrics } from '../metrics.js';
import type { NetconfMeter } from '../netconf/meter.js';
import type { RpcFilter } from '../netconf/rpc-filter.js';
import type { SpliceHandle } from '../splice/splice.js';
import type { UserAccess } from '../northbound/auth.js';

export interface ClientSessionStats {
  bytesToDevice: number;
  bytesToClient: number;
  rpcs: number;
  denied: number;
}

/** How the session reached the device, as the operator API lists it. */
export type ClientSessionKind = 'channel' | 'held';

/** Who a session serves: what a forwarded session's request carries to the device's owner (cluster/peer-protocol.ts). */
export interface ClientIdentity {
  user: string;
  access: UserAccess;
  /** The session's id on the replica the manager reached (audit, /api/sessions). */
  session: string;
  /** The manager's address. */
  client: string;
}

export interface ClientSession {
  readonly deviceId: string;
  readonly who: ClientIdentity;
  /**
   * Set on the device's owner when another replica forwarded the session: that replica
   * meters its NETCONF messages (and audits them), so the owner does not count them again.
   */
  readonly forwarded?: boolean;
  /** The client's accepted `netconf` subsystem channel. */
  readonly channel: ServerChannel;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  readonly limits: { maxMessageBytes: number; maxHelloBytes: number; channelOpenTimeout: number };
  /** The user's RPC filter: refusals for a read-only user; with `always`, one for every user (size checks). */
  filter(always: boolean): RpcFilter | undefined;
  /** The per-user and per-device session caps: a refusal, or the release of the slot taken. */
  admit(): string | (() => void);
  /** The session is under way (counted, audited, listed); `end` ends it on an operator's or a reload's word. */
  started(kind: ClientSessionKind, stats: () => ClientSessionStats, end: (why: GatewayError) => void): void;
  /** One RPC for the audit log. */
  rpc(operation: string, messageId: string | undefined, result: string, durationMs: number): void;
  /** The device's NETCONF session id, from its hello. */
  deviceSession(id: string): void;
  /** Registers a running splice for a graceful drain; returns its removal. */
  inFlight(meter: NetconfMeter, handle: SpliceHandle): () => void;
}

export type SessionResult =
  /** Nothing was served: the client is told why. */
  | { kind: 'refused'; result: ClientSessionResult; reason: string }
  /** The session ran (or the client left while it waited): `reason` is a code or a plain side. */
  | { kind: 'ended'; reason: string; message?: string };
