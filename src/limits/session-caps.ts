// Caps on the NETCONF client sessions one user, and one device, may hold at once: one
// client (or one stolen password) cannot take every channel a device is willing to open.
export class SessionCaps {
  private readonly byUser = new Map<string, number>();
  private readonly byDevice = new Map<string, number>();

  constructor(
    private readonly perUser: number,
    private readonly perDevice: number,
  ) {}

  /** A release function, or the reason the session is refused. */
  acquire(user: string, device: string): (() => void) | string {
    const u = this.byUser.get(user) ?? 0;
    const d = this.byDevice.get(device) ?? 0;
    if (u >= this.perUser) return `user ${user} already holds ${u} sessions (northbound.maxSessionsPerUser)`;
    if (d >= this.perDevice) return `device ${device} already carries ${d} client sessions (northbound.maxSessionsPerDevice)`;
    this.byUser.set(user, u + 1);
    this.byDevice.set(device, d + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      dec(this.byUser, user);
      dec(this.byDevice, device);
    };
  }
}

function dec(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
