// Waiting for a device to call home: a client session for a device that is offline (a
// periodic device between its calls, or one reconnecting) may be held until the device's
// connection is in the registry, instead of failing at once (`northbound.waitForDevice`).
// In cluster mode the device may call another replica: cluster/directory.ts waits on both.
import type { DeviceRegistry } from './registry.js';
import type { LiveDevice } from './live.js';

/**
 * Resolves with the device's session once it is connected, or with undefined when
 * `seconds` pass or `signal` aborts first (client gone, gateway draining). Leaves no
 * listener or timer behind either way.
 */
export function waitForDevice(registry: DeviceRegistry, deviceId: string, seconds: number, signal: AbortSignal): Promise<LiveDevice | undefined> {
  return waitForArrival(registry.get(deviceId), (found) => onAdded(registry, deviceId, found), seconds, signal);
}

/** Calls `found` when `deviceId` is registered; returns the unsubscription. */
export function onAdded(registry: DeviceRegistry, deviceId: string, found: (d: LiveDevice) => void): () => void {
  const listener = (session: LiveDevice) => {
    if (session.deviceId === deviceId) found(session);
  };
  registry.on('added', listener);
  return () => registry.off('added', listener);
}

/**
 * The general wait: `now` if it is there already, else the first thing `subscribe` reports
 * (it returns its unsubscription), or undefined after `seconds` or on `signal`.
 */
export function waitForArrival<T>(now: T | undefined, subscribe: (found: (value: T) => void) => () => void, seconds: number, signal: AbortSignal): Promise<T | undefined> {
  if (now !== undefined || seconds <= 0 || signal.aborted) return Promise.resolve(now);
  return new Promise((resolve) => {
    let unsubscribe = () => {};
    let settled = false;
    const finish = (value: T | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => finish(undefined);
    const timer = setTimeout(() => finish(undefined), seconds * 1000);
    unsubscribe = subscribe((value) => finish(value));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
