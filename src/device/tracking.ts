// Keeps each known device's history and flap state from the registry's and the device
// sessions' events: connects, disconnects, and why an attempt failed.
import type { Config } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { disconnectReason, type GatewayMetrics } from '../metrics.js';
import { FlapDetector, type FlapView } from './flapping.js';
import type { DeviceHistory } from './history.js';
import type { LiveDevice } from './live.js';
import type { DeviceRegistry } from './registry.js';
import type { DeviceSession } from './session.js';
import type { TlsDeviceSession } from './tls-session.js';

/** Wires the history and a flap detector to the registry; returns the detector. */
export function trackDevices(config: Config, registry: DeviceRegistry, history: DeviceHistory, metrics: GatewayMetrics, logger: Logger): FlapDetector {
  registry.on('added', (device: LiveDevice) => history.connected(device.deviceId));
  const flapWhy = (flap: FlapView) => `its connections end within ${config.callhome.flapping.window}s of login, ${flap.shortConnections} in a row (last: ${flap.lastMessage})`;
  const flaps = new FlapDetector(config.callhome.flapping, metrics.deviceFlapsTotal, (id, flap, first) => {
    if (first) logger.warn({ device: id, reason: flap.lastReason, shortConnections: flap.shortConnections }, `device is flapping: ${flapWhy(flap)}`);
    history.attemptFailed(id, 'flapping', flapWhy(flap));
  });
  registry.on('added', (s: LiveDevice) => {
    flaps.connected(s.deviceId, s.connectedAt?.getTime() ?? Date.now());
    // A connection of a flapping device is no success yet: lastError keeps saying why.
    const flap = flaps.view(s.deviceId);
    if (flap) history.attemptFailed(s.deviceId, 'flapping', flapWhy(flap));
  });
  registry.on('removed', (s: LiveDevice, reason: GatewayError) => flaps.disconnected(s.deviceId, s.transport, s.connectedAt?.getTime() ?? Date.now(), reason));
  return flaps;
}

/**
 * Keeps each known device's history: connects, disconnects, and why an attempt failed
 * (`lastError`, for a device identified by its host key or certificate before it failed).
 */
export function trackAttempt(history: DeviceHistory, session: DeviceSession | TlsDeviceSession): void {
  session.once('closed', (reason: GatewayError) => {
    if (session.connectedAt) history.disconnected(session.deviceId, reason);
    else {
      const id = identifiedId(session);
      if (id !== undefined && reason.code !== 'GW_ERR_SHUTDOWN') history.attemptFailed(id, disconnectReason(reason.code), reason.message);
    }
  });
}

/** The device a session was identified as, if it got that far (by host key or certificate). */
function identifiedId(session: DeviceSession | TlsDeviceSession): string | undefined {
  try {
    return session.deviceId;
  } catch {
    return undefined; // not identified: an unknown device, listed in /api/pending instead
  }
}
