// Where the northbound finds the device a client asked for. Standalone, that is the registry
// of devices connected here; in cluster mode (cluster/directory.ts) a device another replica
// holds is found too, and reached through it, behind the same ReachableDevice.
import type { ReachableDevice } from './live.js';
import type { DeviceRegistry } from './registry.js';
import { waitForDevice } from './arrival.js';

export interface DeviceDirectory {
  /** The device, wherever it is connected; undefined when nowhere. Rejects with a one-line reason (GW_ERR_CLUSTER_UNAVAILABLE) when that cannot be known. */
  find(deviceId: string): Promise<ReachableDevice | undefined>;
  /** The device once it is connected anywhere, or undefined after `seconds` or on `signal` (northbound.waitForDevice). */
  wait(deviceId: string, seconds: number, signal: AbortSignal): Promise<ReachableDevice | undefined>;
}

/** The directory of one standalone gateway: its own registry. */
export function localDirectory(registry: DeviceRegistry): DeviceDirectory {
  return {
    find: (deviceId) => Promise.resolve(registry.get(deviceId)),
    wait: (deviceId, seconds, signal) => waitForDevice(registry, deviceId, seconds, signal),
  };
}
