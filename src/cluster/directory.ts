// Where a device is, in cluster mode: connected here (the registry), or held by another
// replica (its owner record in Redis), then reached through that replica (RemoteDevice).
// A client waiting for a device (northbound.waitForDevice) wakes when it calls any replica:
// on the registry's 'added' here, on the ownership's 'owned' for a claim elsewhere.
import { onAdded, waitForArrival } from '../device/arrival.js';
import type { DeviceDirectory } from '../device/directory.js';
import type { ReachableDevice } from '../device/live.js';
import type { DeviceRegistry } from '../device/registry.js';
import { RemoteDevice, type PeerDialerDeps } from './remote-device.js';
import type { DeviceOwner, Ownership } from './types.js';

export class ClusterDirectory implements DeviceDirectory {
  constructor(
    private readonly registry: DeviceRegistry,
    private readonly ownership: Ownership,
    private readonly dialer: PeerDialerDeps,
  ) {}

  async find(deviceId: string): Promise<ReachableDevice | undefined> {
    // Local first: no Redis round trip, and it works while Redis is away.
    const local = this.registry.get(deviceId);
    if (local) return local;
    return this.reach(await this.ownership.lookup(deviceId));
  }

  wait(deviceId: string, seconds: number, signal: AbortSignal): Promise<ReachableDevice | undefined> {
    return waitForArrival<ReachableDevice>(
      undefined,
      (found) => {
        const offLocal = onAdded(this.registry, deviceId, found);
        const onOwned = (owner: DeviceOwner) => {
          // This replica's own claims arrive as 'added' on the registry.
          if (owner.deviceId === deviceId && owner.replica !== this.ownership.replicaId) found(new RemoteDevice(owner, this.dialer));
        };
        this.ownership.on('owned', onOwned);
        // A claim made between the caller's lookup and these listeners: look once more.
        this.find(deviceId).then(
          (device) => device && found(device),
          () => {}, // Redis away: the events above may still bring it
        );
        return () => {
          offLocal();
          this.ownership.off('owned', onOwned);
        };
      },
      seconds,
      signal,
    );
  }

  private reach(owner: DeviceOwner | undefined): ReachableDevice | undefined {
    if (!owner) return undefined;
    // A record naming this replica for a device it no longer holds is stale: not connected.
    if (owner.replica === this.ownership.replicaId) return this.registry.get(owner.deviceId);
    return new RemoteDevice(owner, this.dialer);
  }
}
