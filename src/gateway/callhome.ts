// The call-home listeners' wiring: SSH always, TLS when enabled; both register the devices
// that log in and record each attempt in the device history.
import { SshCallHome } from '../callhome/ssh.js';
import { TlsCallHome } from '../callhome/tls.js';
import { trackAttempt } from '../device/tracking.js';
import { deviceCeiling } from '../limits/device-ceiling.js';
import type { GatewayParts } from './parts.js';

function common(parts: GatewayParts) {
  return {
    config: parts.config,
    inventory: parts.inventory,
    pending: parts.onboarding.pending,
    registry: parts.registry,
    metrics: parts.metrics,
    held: parts.heldMetrics,
    logger: parts.logger,
  };
}

export function sshCallHome(parts: GatewayParts): SshCallHome {
  const { config, limits, registry, logger } = parts;
  return new SshCallHome({
    ...common(parts),
    sshPolicy: parts.sshPolicy,
    sessionModes: parts.sessionModes,
    admit: (socket) => limits.callhomeAdmission.admit(socket),
    admitDevice: deviceCeiling(registry, config.limits.maxDevices, logger),
    onSession: (session) => trackAttempt(parts.history, session),
  });
}

export function tlsCallHome(parts: GatewayParts): TlsCallHome {
  return new TlsCallHome({
    ...common(parts),
    admit: (socket) => parts.limits.callhomeAdmission.admit(socket, 'tls'),
    onSession: (session) => trackAttempt(parts.history, session),
  });
}
