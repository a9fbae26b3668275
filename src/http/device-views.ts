// /api/devices: one view per inventory device, live or not, with its history and flap state.
import type { Inventory } from '../inventory/inventory.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { DeviceHistory } from '../device/history.js';
import type { FlapDetector } from '../device/flapping.js';
import type { DeviceView } from './server.js';

export interface DeviceViewSources {
  inventory: Inventory;
  registry: DeviceRegistry;
  history: DeviceHistory;
  flaps: FlapDetector;
  /** The device ports listening now (device id → port). */
  devicePorts: Map<string, number>;
  /** Whether a device came from an approval rather than the inventory file. */
  isApproved(id: string): boolean;
}

export function deviceViews(s: DeviceViewSources): DeviceView[] {
  return [...s.inventory.devices.values()].map((entry) => {
    const live = s.registry.get(entry.id);
    const flapping = s.flaps.view(entry.id) ?? null;
    return {
      id: entry.id,
      state: flapping ? 'flapping' : live ? 'connected' : 'disconnected',
      transport: live?.transport ?? (entry.tls && entry.hostKeys.length === 0 ? 'tls' : 'ssh'),
      remoteAddress: live?.remoteAddress ?? null,
      connectedAt: live?.connectedAt?.toISOString() ?? null,
      port: s.devicePorts.get(entry.id) ?? entry.port ?? null,
      sessions: live?.sessions ?? 0,
      capabilities: live ? [...live.capabilities] : [],
      sessionMode: live?.sessionMode.mode ?? null,
      sessionModeReason: live?.sessionMode.reason ?? null,
      flapping,
      source: s.isApproved(entry.id) ? 'approval' : 'inventory',
      ...s.history.view(entry.id),
    };
  });
}
