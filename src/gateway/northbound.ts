// The northbound side's wiring: the gateway's SSH host key, and the server managers dial,
// with its limits, policy and audit.
import { fingerprintOfKeyBlob } from '../inventory/identity.js';
import { loadOrCreateHostKey } from '../northbound/hostkey.js';
import { NorthboundServer } from '../northbound/server.js';
import type { GatewayParts } from './parts.js';

/** Loads the northbound host key (made on first start) and logs its fingerprint. */
export function northboundHostKey({ config, logger }: Pick<GatewayParts, 'config' | 'logger'>): ReturnType<typeof loadOrCreateHostKey> {
  const hostKey = loadOrCreateHostKey(config.northbound.hostKeyFile, fingerprintOfKeyBlob);
  logger.info(
    { file: config.northbound.hostKeyFile, fingerprint: hostKey.fingerprint, generated: hostKey.generated },
    hostKey.generated ? 'generated the northbound host key' : 'loaded the northbound host key',
  );
  return hostKey;
}

/** What a served client session may cost, for local and forwarded sessions alike. */
export function clientSessionLimits(config: GatewayParts['config']): { channelOpenTimeout: number; maxMessageBytes: number; maxHelloBytes: number } {
  return {
    channelOpenTimeout: config.callhome.helloTimeout,
    maxMessageBytes: config.netconf.maxMessageBytes,
    maxHelloBytes: config.netconf.maxHelloBytes,
  };
}

/** `directory`: cluster mode's lookup of devices held by other replicas (cluster/forwarding.ts). */
export function gatewayNorthboundServer(
  parts: GatewayParts,
  hostKey: ReturnType<typeof loadOrCreateHostKey>,
  directory?: ConstructorParameters<typeof NorthboundServer>[0]['directory'],
): NorthboundServer {
  const { config, limits } = parts;
  return new NorthboundServer({
    hostKey: hostKey.privateKey,
    users: parts.users,
    inventory: parts.inventory,
    registry: parts.registry,
    metrics: parts.metrics,
    inFlight: parts.inFlight,
    sessions: parts.sessions,
    logger: parts.logger.child({ side: 'northbound' }),
    options: {
      loginGraceTime: config.northbound.loginGraceTime,
      ...clientSessionLimits(config),
      keepalive: config.northbound.keepalive,
      waitForDevice: config.northbound.waitForDevice,
    },
    admission: limits.northboundAdmission,
    sshPolicy: parts.sshPolicy,
    sessionCaps: limits.sessionCaps,
    audit: parts.audit,
    ...(directory ? { directory } : {}),
  });
}
