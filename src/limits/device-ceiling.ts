// The device ceiling (limits.maxDevices): a device already connected may always replace itself.
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeviceRegistry } from '../device/registry.js';

export function deviceCeiling(registry: DeviceRegistry, maxDevices: number, logger: Logger): (id: string) => GatewayError | undefined {
  return (id) => {
    if (registry.size < maxDevices || registry.get(id)) return undefined;
    logger.warn({ device: id, reason: 'GW_ERR_REJECTED_LIMIT', ceiling: maxDevices }, `device ceiling reached (${maxDevices} connected, limits.maxDevices): refusing ${id}`);
    return new GatewayError('GW_ERR_REJECTED_LIMIT', `device ceiling reached (limits.maxDevices = ${maxDevices})`);
  };
}
