// Cluster-mode checks of a rendered gateway Deployment (SPEC.md "Cluster mode"): what
// several replicas need from Kubernetes to be one gateway. Pure functions over rendered
// objects, used by crosscheck.test (every tree) and cluster.test.
import type { Config } from '../../../src/config/schema.js';
import { describeObject, type K8sObject } from './k8s.js';
import { SAMPLE_POD_FIELDS, type PodView } from './pod.js';

type Peer = { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: { cidr: string } };
type Rule = { ports?: { port?: string | number; protocol?: string }[]; from?: Peer[]; to?: Peer[] };

/** The NetworkPolicies that select the gateway pod. */
export function gatewayPolicies(objects: K8sObject[], pod: PodView): Record<string, any>[] {
  return objects.filter((o) => o.kind === 'NetworkPolicy' && pod.selects((o as any).spec?.podSelector?.matchLabels)) as Record<string, any>[];
}

/** Whether a rule's port list covers `port` (no list: every port). Names resolve through `named`. */
function rulePortCovers(rule: Rule, port: number, named: (ref: string | number) => number | undefined): boolean {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((rp) => rp.port === undefined || rp.port === port || named(rp.port) === port);
}

/** Host and port of cluster.redis.url. */
export function redisAddress(url: string): { host: string; port: number; tls: boolean } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), tls: u.protocol === 'rediss:' };
}

/** A workload's pod template whose labels a Service selector matches, with its first container. */
export function selectedWorkload(objects: K8sObject[], selector: Record<string, string> | undefined): Record<string, any> | undefined {
  if (!selector || Object.keys(selector).length === 0) return undefined;
  return objects.find((o) => ['Deployment', 'StatefulSet'].includes(o.kind) && Object.entries(selector).every(([k, v]) => (o as any).spec.template.metadata?.labels?.[k] === v)) as
    Record<string, any> | undefined;
}

export function clusterProblems(objects: K8sObject[], pod: PodView, config: Config): string[] {
  const p: string[] = [];
  const where = describeObject(pod.deployment);
  const replicas = Number((pod.deployment as any).spec.replicas ?? 1);
  const peerPort = config.cluster.peer.port;

  // --- identity: downward API, advertised address ------------------------------------------
  if (config.cluster.replicaId !== SAMPLE_POD_FIELDS['metadata.name']) {
    p.push(`${where}: cluster.replicaId should be the pod name (downward API metadata.name), got ${config.cluster.replicaId}`);
  }
  const advertise = `${SAMPLE_POD_FIELDS['status.podIP']}:${peerPort}`;
  if (config.cluster.peer.advertise !== advertise) {
    p.push(`${where}: cluster.peer.advertise should be "$(POD_IP):${peerPort}" from status.podIP (would be ${advertise}), got "${config.cluster.peer.advertise}"`);
  }
  if (pod.portNumber('peer') !== peerPort) p.push(`${where}: no container port "peer" = cluster.peer.port ${peerPort}`);

  // --- one identity for all replicas: files from Secrets ------------------------------------
  const fromSecret = (key: string, file: string) => {
    const m = pod.resolve(file);
    if (!file || m?.source !== 'secret')
      p.push(`${where}: ${key} must be a file from a Secret in cluster mode (every replica the same), got "${file}"${m ? ` on ${m.source}` : ''}`);
  };
  fromSecret('northbound.hostKeyFile', config.northbound.hostKeyFile);
  fromSecret('cluster.peer.caFile', config.cluster.peer.caFile);
  fromSecret('cluster.peer.certFile', config.cluster.peer.certFile);
  fromSecret('cluster.peer.keyFile', config.cluster.peer.keyFile);
  if (config.callhome.tls.enabled) {
    // Generated per replica otherwise: each with its own CA, which devices would not trust.
    fromSecret('callhome.tls.certFile', config.callhome.tls.certFile);
    fromSecret('callhome.tls.keyFile', config.callhome.tls.keyFile);
  }
  fromSecret('cluster.redis.passwordFile', config.cluster.redis.passwordFile);

  // --- disruption budget and spreading -------------------------------------------------------
  for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget' && pod.selects((o as any).spec?.selector?.matchLabels))) {
    const min = (pdb as any).spec.minAvailable;
    if (typeof min !== 'number') p.push(`${describeObject(pdb)}: set minAvailable as a number of replicas (it is ${min})`);
    else if (min < 2 || min >= replicas) p.push(`${describeObject(pdb)}: minAvailable ${min} must be at least 2 and below replicas ${replicas}`);
  }
  const anti = pod.podSpec.affinity?.podAntiAffinity ?? {};
  const terms = [
    ...((anti.preferredDuringSchedulingIgnoredDuringExecution ?? []) as { podAffinityTerm: any }[]).map((t) => t.podAffinityTerm),
    ...((anti.requiredDuringSchedulingIgnoredDuringExecution ?? []) as any[]),
  ];
  if (!terms.some((t) => t?.topologyKey === 'kubernetes.io/hostname' && pod.selects(t.labelSelector?.matchLabels))) {
    p.push(`${where}: no pod anti-affinity by kubernetes.io/hostname selecting the gateway's own pods`);
  }

  // --- the peer Service ------------------------------------------------------------------------
  for (const svc of objects.filter((o) => o.kind === 'Service' && pod.selects((o as any).spec?.selector))) {
    const ports = (svc as any).spec.ports as { port: number; targetPort?: string | number }[];
    if (!ports.some((sp) => pod.portNumber(sp.targetPort ?? sp.port) === peerPort)) continue;
    if ((svc as any).spec.clusterIP !== 'None') {
      p.push(`${describeObject(svc)}: publishes the peer port through a virtual IP; replicas dial each other directly (headless, clusterIP: None)`);
    }
  }

  // --- NetworkPolicy: the peer port from gateway pods only; egress that cluster mode needs -----
  const policies = gatewayPolicies(objects, pod);
  const named = (ref: string | number) => pod.portNumber(ref);
  const gatewayOnly = (peers: Peer[] | undefined) =>
    !!peers && peers.length > 0 && peers.every((x) => !x.namespaceSelector && !x.ipBlock && pod.selects(x.podSelector?.matchLabels));
  for (const np of policies) {
    (((np as any).spec.ingress ?? []) as Rule[]).forEach((rule, i) => {
      if (rulePortCovers(rule, peerPort, named) && !gatewayOnly(rule.from)) {
        p.push(`${describeObject(np as K8sObject)}: ingress rule ${i} lets more than the gateway's own pods reach the peer port ${peerPort}`);
      }
    });
  }
  const egressPolicies = policies.filter((np) => (np.spec.policyTypes ?? []).includes('Egress'));
  const egress = (test: (rule: Rule) => boolean) => egressPolicies.length === 0 || egressPolicies.some((np) => ((np.spec.egress ?? []) as Rule[]).some(test));
  if (!egress((r) => rulePortCovers(r, peerPort, named) && gatewayOnly(r.to))) {
    p.push(`${where}: no egress rule lets a replica reach the other replicas' peer port ${peerPort}`);
  }
  const redis = redisAddress(config.cluster.redis.url);
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === redis.host.split('.')[0]);
  if (service) {
    const sp = ((service as any).spec.ports as { port: number; targetPort?: string | number }[]).find((x) => x.port === redis.port);
    if (!sp) p.push(`${describeObject(service)}: has no port ${redis.port} (cluster.redis.url)`);
    const workload = selectedWorkload(objects, (service as any).spec.selector);
    const container = workload?.spec.template.spec.containers[0];
    const target = sp?.targetPort ?? sp?.port;
    const containerPort = (container?.ports ?? []).find((cp: any) => cp.name === target || cp.containerPort === target)?.containerPort;
    if (!workload || containerPort === undefined) p.push(`${describeObject(service)}: selects no workload exposing its Redis port`);
    const podLabels = workload?.spec.template.metadata.labels ?? {};
    const reaches = (r: Rule) =>
      rulePortCovers(r, containerPort ?? -1, () => undefined) &&
      (r.to ?? []).some((x) => !x.namespaceSelector && Object.entries(x.podSelector?.matchLabels ?? { _: '' }).every(([k, v]) => podLabels[k] === v));
    if (!egress(reaches)) p.push(`${where}: no egress rule reaches the Redis pods of ${describeObject(service)} on ${containerPort}`);
  } else if (!egress((r) => !!r.ports?.some((rp) => rp.port === redis.port) && (r.to ?? []).some((x) => x.ipBlock))) {
    // An external Redis: NetworkPolicy can only name its addresses.
    if (!/^[a-z0-9-]+$/.test(redis.host)) p.push(`${where}: no egress rule (ipBlock) reaches the external Redis ${redis.host}:${redis.port}`);
  }
  if (!/^[\d.]+$/.test(redis.host) && !egress((r) => rulePortCovers(r, 53, () => undefined) && (r.ports ?? []).some((rp) => rp.port === 53))) {
    p.push(`${where}: no egress rule for DNS (port 53), needed to resolve ${redis.host}`);
  }
  return p;
}
