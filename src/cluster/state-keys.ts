// Where the shared state lives in Redis (cluster mode). Every write is one Lua script (atomic)
// that ends with a PUBLISH on CHANGES naming what changed; every replica then re-reads it.
import { KEY_PREFIX } from './redis.js';

export const STATE_KEYS = {
  /** A random id written once into an empty Redis: when it changes, Redis lost the state (restart without persistence). */
  generation: `${KEY_PREFIX}state:generation`,
  /** Pub/sub channel: 'approvals' or 'ports'. */
  changes: `${KEY_PREFIX}state`,
  /** Hash fingerprint → approval (JSON, as in approvals.json). */
  approvals: `${KEY_PREFIX}approvals`,
  /** Hash device id → fingerprint: one approval per id. */
  approvalIds: `${KEY_PREFIX}approvals:ids`,
  /** Sorted set of fingerprints rejected for good, scored by the rejection time (ms). */
  rejected: `${KEY_PREFIX}rejected`,
  /** Hash fingerprint → pending device (JSON). */
  pending: `${KEY_PREFIX}pending`,
  /** Sorted set of pending fingerprints by last attempt (ms): bounds the list. */
  pendingSeen: `${KEY_PREFIX}pending:seen`,
  /** Hash device id → northbound port assigned from northbound.portRange. */
  ports: `${KEY_PREFIX}ports`,
  /** Counter raised by every change of the ports hash: the compare-and-set token. */
  portsVersion: `${KEY_PREFIX}ports:version`,
} as const;

export type StateChange = 'approvals' | 'ports';
