// The operator's actions through the API: end a client session, drop a device's connection.
// Each is audited with who asked: the admin token's holder (there is one token), told apart
// by the HTTP client's address and its User-Agent (the CLI sends the local user and host).
import type { AdminAuditRecord, AuditLog } from '../audit/audit.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { ClientSessions } from '../northbound/sessions.js';
import type { AdminAnswer } from './admin.js';

export interface Actor {
  remoteAddress: string;
  userAgent?: string;
}

export type OperatorAction = AdminAuditRecord['action'];

export interface OperatorApi {
  killSession(id: string, actor: Actor): AdminAnswer;
  disconnectDevice(id: string, actor: Actor): AdminAnswer;
  /** A write refused for want of a valid token, recorded too. */
  unauthorized(action: OperatorAction, target: string, actor: Actor): void;
}

/** Refused attempts recorded per minute; beyond that they are counted into the next record, so a flood cannot fill the disk. */
const UNAUTHORIZED_RECORDS_PER_MINUTE = 20;

export function operatorActions(deps: { sessions: ClientSessions; registry: DeviceRegistry; audit: AuditLog | undefined; logger: Logger; now?: () => number }): OperatorApi {
  const { sessions, registry, audit, logger } = deps;
  const now = deps.now ?? Date.now;
  let windowStart = 0;
  let inWindow = 0;
  let suppressed = 0;
  const record = (action: OperatorAction, target: string, actor: Actor, result: AdminAuditRecord['result']) => {
    let extra: { suppressed?: number } = {};
    if (result === 'unauthorized') {
      if (now() - windowStart >= 60_000) {
        windowStart = now();
        inWindow = 0;
      }
      if (++inWindow > UNAUTHORIZED_RECORDS_PER_MINUTE) {
        suppressed++;
        return;
      }
      if (suppressed > 0) extra = { suppressed };
      suppressed = 0;
    }
    const who = {
      actor: result === 'unauthorized' ? ('none' as const) : ('admin-token' as const),
      remoteAddress: actor.remoteAddress,
      ...(actor.userAgent ? { userAgent: actor.userAgent } : {}),
    };
    audit?.write({ event: 'admin', action, target, ...who, result, ...extra });
    logger[result === 'ok' ? 'info' : 'warn']({ action, target, ...who, result, ...extra }, `operator ${action} ${target}: ${result}`);
  };
  return {
    killSession(id, actor) {
      const session = sessions.get(id);
      if (!session || !sessions.kill(id, new GatewayError('GW_ERR_OPERATOR', 'session ended by an operator'))) {
        record('session-kill', id, actor, 'not_found');
        return { status: 404, body: { error: `no session ${id}` } };
      }
      record('session-kill', id, actor, 'ok');
      return { status: 200, body: { id, user: session.user, device: session.device, state: 'ended' } };
    },
    disconnectDevice(id, actor) {
      const killed = registry.kill(id, new GatewayError('GW_ERR_OPERATOR', `device ${id} disconnected by an operator (it calls home again by itself)`));
      if (!killed) {
        record('device-disconnect', id, actor, 'not_found');
        return { status: 404, body: { error: `device ${id} is not connected` } };
      }
      record('device-disconnect', id, actor, 'ok');
      return { status: 200, body: { id, state: 'disconnected' } };
    },
    unauthorized(action, target, actor) {
      record(action, target, actor, 'unauthorized');
    },
  };
}
