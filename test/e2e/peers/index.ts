// The real-peer harness for end-to-end tests (see REAL_PEERS.md): import from here.
export * from './constants.js';
export * from './util.js';
export * from './skip.js';
export * from './netconfd.js';
export * from './device.js';
export * from './ncclient.js';
export * from './openssh.js';
export * from './tls-device.js';
export * from './libnetconf2.js';
export * from './prometheus.js';
