// The simulator's public surface: simulated call-home devices for tests, benchmarks and users.
export { runSimulate, SIMULATE_HELP, type SimulateIo } from './cli.js';
export { SimulatedDevice, type DeviceEvents, type DeviceState, type SimulatedDeviceOptions } from './device.js';
export { SshHost, type SshHostOptions } from './ssh-host.js';
export { Fleet, type FleetOptions, type FleetProgress, type FleetSummary, type StartOptions } from './fleet.js';
export { DeviceDatastore } from './datastore.js';
export { NetconfSession, serveNetconf, SERVER_CAPABILITIES, type NetconfSessionOptions } from './netconf-server.js';
export { FrameReader, FramingError, frameMessage, type Framing } from './framing.js';
export { deriveSeed, ed25519PrivateKeyFromSeed, fingerprintOf, publicKeyLine } from './keys.js';
