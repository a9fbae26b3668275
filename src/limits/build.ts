// Builds the gateway's limits from the configuration: admission control on each listener,
// the open-file ceiling and the per-user/per-device session caps.
import type { Config, AdmissionConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import { Admission, type RejectReason } from './admission.js';
import { FdCeiling, resolveFdCeiling } from './fd-ceiling.js';
import { parseStartups } from './startups.js';
import { SessionCaps } from './session-caps.js';

export interface Limits {
  fds: FdCeiling;
  /** Shared by the call-home listeners: admit(socket, 'ssh' | 'tls'). */
  callhomeAdmission: Admission;
  northboundAdmission: Admission;
  sessionCaps: SessionCaps;
}

/** Logs refusals at most once per interval per kind, so a flood cannot flood the log. */
function throttled(logger: Logger, intervalMs = 10_000) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (kind: string, fields: Record<string, unknown>, message: string) => {
    const now = Date.now();
    const seen = last.get(kind);
    if (seen && now - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    logger.warn({ ...fields, suppressed: seen?.suppressed ?? 0 }, message);
    last.set(kind, { at: now, suppressed: 0 });
  };
}

const REJECT_TEXT: Record<RejectReason, string> = {
  startups_full: 'too many connections not yet authenticated (maxStartups full)',
  random_drop: 'dropped early: many connections not yet authenticated (maxStartups)',
  per_source: 'too many connections not yet authenticated from this address (perSourceMaxStartups)',
  penalty: 'source blocked after repeated failures (failureBackoff)',
  fd_ceiling: 'open file ceiling reached (limits.maxOpenFiles)',
};

function admissionPolicy(c: AdmissionConfig, graceSeconds: number) {
  return {
    startups: parseStartups(c.maxStartups),
    perSource: c.perSourceMaxStartups,
    graceSeconds,
    penalties: { ...c.failureBackoff },
  };
}

export function buildLimits(config: Config, logger: Logger, metrics: GatewayMetrics): Limits {
  const fds = new FdCeiling(resolveFdCeiling(config.limits.maxOpenFiles), logger);
  metrics.watchSockets(fds);
  const warnCallhome = throttled(logger.child({ side: 'callhome' }));
  const warnNorthbound = throttled(logger.child({ side: 'northbound' }));
  // Call home: the DeviceSession owns the login deadline (it counts result="timeout"),
  // so the admission's own grace timer is off there.
  const callhomeAdmission = new Admission(
    admissionPolicy(config.callhome, 0),
    {
      rejected: (reason, remoteAddress, label) => {
        metrics.connectionsTotal.inc({ transport: label === 'tls' ? 'tls' : 'ssh', result: 'rejected_limit' });
        warnCallhome(`reject-${reason}`, { remoteAddress, reason: 'GW_ERR_REJECTED_LIMIT', limit: reason }, `call-home connection refused: ${REJECT_TEXT[reason]}`);
      },
    },
    fds,
  );
  const northboundAdmission = new Admission(
    admissionPolicy(config.northbound, config.northbound.loginGraceTime),
    {
      rejected: (reason, remoteAddress) =>
        warnNorthbound(`reject-${reason}`, { remoteAddress, reason: 'GW_ERR_REJECTED_LIMIT', limit: reason }, `client connection refused: ${REJECT_TEXT[reason]}`),
      timedOut: (remoteAddress) =>
        warnNorthbound('timeout', { remoteAddress, reason: 'GW_ERR_TIMEOUT' }, `client did not authenticate within ${config.northbound.loginGraceTime}s`),
    },
    fds,
  );
  return {
    fds,
    callhomeAdmission,
    northboundAdmission,
    sessionCaps: new SessionCaps(config.northbound.maxSessionsPerUser, config.northbound.maxSessionsPerDevice),
  };
}
