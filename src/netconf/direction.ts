// Which way bytes and messages travel through the gateway: toward the device (the client's
// requests) or toward the client (the device's replies and notifications). Also the
// `direction` label of the callhome_netconf_* metrics.
export const DIRECTIONS = ['to_device', 'to_client'] as const;
export type Direction = (typeof DIRECTIONS)[number];
