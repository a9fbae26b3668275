// Waiting for a device to call home: a client session for a device that is offline (a
// periodic device between its calls, or one reconnecting) may be held until the device's
// connection is in the registry, instead of failing at once (`northbound.waitForDevice`).
import type { DeviceRegistry } from './registry.js';
import type { LiveDevice } from './live.js';

/**
 * Resolves with the device's session once it is connected, or with undefined when
 * `seconds` pass or `signal` aborts first (client gone, gateway draining). Leaves no
 * listener or timer behind either way.
 */
export function waitForDevice(registry: DeviceRegistry, deviceId: string, seconds: number, signal: AbortSignal): Promise<LiveDevice | undefined> {
  const now = registry.get(deviceId);
  if (now || seconds <= 0 || signal.aborted) return Promise.resolve(now);
  return new Promise((resolve) => {
    const finish = (session: LiveDevice | undefined) => {
      clearTimeout(timer);
      registry.off('added', onAdded);
      signal.removeEventListener('abort', onAbort);
      resolve(session);
    };
    const onAdded = (session: LiveDevice) => {
      if (session.deviceId === deviceId) finish(session);
    };
    const onAbort = () => finish(undefined);
    const timer = setTimeout(() => finish(undefined), seconds * 1000);
    registry.on('added', onAdded);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
