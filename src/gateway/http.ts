// The HTTP server's wiring: health, metrics, the device and session views, and the operator
// and onboarding actions, each answered from the gateway's parts.
import { Cluster } from '../cluster/cluster.js';
import { deviceViews } from '../http/device-views.js';
import { hostGuard } from '../http/host-guard.js';
import { onboardingAnswers } from '../http/onboarding.js';
import { operatorActions } from '../http/operator.js';
import { HttpServer } from '../http/server.js';
import { apiTokens } from '../http/tokens.js';
import type { GatewayParts } from './parts.js';

export function gatewayHttpServer(parts: GatewayParts): HttpServer {
  const { config, logger, metrics, registry, sessions, onboarding } = parts;
  return new HttpServer(
    {
      ready: parts.running,
      metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      devices: () => {
        const local = deviceViews({
          inventory: parts.inventory(),
          registry,
          history: parts.history,
          flaps: parts.flaps,
          devicePorts: parts.devicePorts.listening(),
          isApproved: (id) => onboarding.isApproved(id),
        });
        // Cluster mode: devices held by other replicas too, each with its owner.
        const cluster = parts.cluster();
        return cluster ? cluster.devices(local) : local;
      },
      replicas: async () => parts.cluster()?.replicas() ?? Cluster.standalone(config, registry, parts.startedAt),
      pending: () => onboarding.pending.listAll(),
      hostAllowed: hostGuard(config.http.allowedHosts),
      sessions: () => sessions.list(),
      admin: {
        operator: operatorActions({ sessions, registry, audit: parts.audit, logger }),
        ...apiTokens(config, logger),
        ...onboardingAnswers(onboarding),
      },
    },
    logger,
  );
}
