// What a forwarded session asks for and what it is answered: the first frame each way of a
// peer connection (peer-frames.ts). Parsed strictly: a malformed request is a protocol error
// with a one-line reason, never a partly understood session.
import { GatewayError } from '../errors.js';
import type { ClientSessionResult } from '../metrics.js';
import { DEVICE_ID_RE } from '../inventory/inventory.js';
import type { UserAccess } from '../northbound/auth.js';
import type { ClientSessionKind } from '../device/client.js';

export const PROTOCOL_VERSION = 1;

/** B → A: a NETCONF session on `device` for `user`, whom B has authenticated and authorised. */
export interface PeerRequest {
  v: number;
  device: string;
  user: string;
  access: UserAccess;
  /** B's session id (audit, /api/sessions on B), for A's log lines. */
  session: string;
  /** The manager's address, for A's log lines. */
  client: string;
  /** B's replica id. */
  replica: string;
}

/** How the owner may refuse: as a local client session would be counted. */
export const REFUSAL_RESULTS = ['denied', 'device_unavailable', 'rejected_limit'] as const satisfies readonly ClientSessionResult[];
export type RefusalResult = (typeof REFUSAL_RESULTS)[number];

/** A → B: the session runs (`kind`: a channel of its own, or the held session lent), or why not. */
export type PeerReply = { ok: true; kind: ClientSessionKind } | { ok: false; result: RefusalResult; reason: string };

const protocolError = (message: string) => new GatewayError('GW_ERR_PROTOCOL', message);

function parseJson(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw protocolError(`${what} is not JSON`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw protocolError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const text = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && !/[\r\n]/.test(v);

export function parseRequest(payload: Buffer): PeerRequest {
  const r = parseJson(payload, 'forwarded session request');
  if (r.v !== PROTOCOL_VERSION) throw protocolError(`forwarded session request of protocol version ${String(r.v)} (this replica speaks ${PROTOCOL_VERSION})`);
  if (typeof r.device !== 'string' || !DEVICE_ID_RE.test(r.device)) throw protocolError('forwarded session request names no valid device');
  if (!text(r.user, 256)) throw protocolError('forwarded session request names no valid user');
  if (r.access !== 'read-only' && r.access !== 'read-write') throw protocolError('forwarded session request has no valid access');
  for (const key of ['session', 'client', 'replica'] as const) {
    if (!text(r[key], 256)) throw protocolError(`forwarded session request has no valid ${key}`);
  }
  return r as unknown as PeerRequest;
}

export function parseReply(payload: Buffer): PeerReply {
  const r = parseJson(payload, 'forwarded session reply');
  if (r.ok === true && (r.kind === 'channel' || r.kind === 'held')) return { ok: true, kind: r.kind };
  if (r.ok === false && REFUSAL_RESULTS.includes(r.result as RefusalResult) && text(r.reason, 1024)) {
    return { ok: false, result: r.result as RefusalResult, reason: r.reason as string };
  }
  throw protocolError('malformed forwarded session reply');
}
