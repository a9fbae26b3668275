// The parts a Gateway builds once and the listeners it starts are wired from (http.ts,
// northbound.ts, callhome.ts). Files that change at run time (inventory, users) are read
// through functions, so a reload is seen at once.
import type { AuditLog } from '../audit/audit.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Config } from '../config/schema.js';
import type { HeldSessionMetrics } from '../device/held-metrics.js';
import type { DeviceHistory } from '../device/history.js';
import type { FlapDetector } from '../device/flapping.js';
import type { DeviceRegistry } from '../device/registry.js';
import type { SessionModeMemory } from '../device/session-mode.js';
import type { Inventory } from '../inventory/inventory.js';
import type { InFlightSessions } from '../lifecycle/drain.js';
import type { Limits } from '../limits/build.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import type { Users } from '../northbound/auth.js';
import type { ClientSessions } from '../northbound/sessions.js';
import type { Onboarding } from '../onboarding/service.js';
import type { SshPolicy } from '../ssh/policy.js';
import type { DevicePorts } from './device-ports.js';

export interface GatewayParts {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  heldMetrics: HeldSessionMetrics;
  registry: DeviceRegistry;
  history: DeviceHistory;
  sessionModes: SessionModeMemory;
  flaps: FlapDetector;
  inFlight: InFlightSessions;
  sessions: ClientSessions;
  limits: Limits;
  sshPolicy: SshPolicy;
  audit: AuditLog;
  onboarding: Onboarding;
  devicePorts: DevicePorts;
  inventory(): Inventory;
  users(): Users;
  /** Whether the gateway is running (readyz). */
  running(): boolean;
  /** Cluster mode only (cluster.redis.url set), once started. */
  cluster(): Cluster | undefined;
  startedAt: Date;
}
