// The manifests agree with the gateway and with SPEC.md: environment names come from the
// config schema, the effective configuration (ConfigMap file + env) loads with the real
// loader, container ports / Service ports / probes / mounts / policies line up, and the
// secrets every *File key names are mounted.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { configEnvNames, configSchema, loadConfig } from '../../src/config/load.js';
import { clusterMode, type Config } from '../../src/config/schema.js';
import { clusterProblems } from './helpers/cluster.js';
import { describeObject, findRenderer, kustomizeDirs, parseObjects, repoRoot, type K8sObject } from './helpers/k8s.js';
import { podViews, type PodView } from './helpers/pod.js';
import { loadSpec, specPort, type Spec } from './helpers/spec.js';
import { dockerfileUser, readDockerfile } from './helpers/dockerfile.js';

const renderer = findRenderer();
const spec = loadSpec();

function schemaDefault(key: string): unknown {
  let node: any = configSchema;
  for (const part of key.split('.')) node = node?.[part];
  return node && typeof node === 'object' && 'default' in node ? node.default : undefined;
}

const configKeys = () => [...configEnvNames().keys()];

if (!spec) {
  const why = 'SPEC.md not found (looked in ../shared, ./shared, ., docs; set CHGW_SPEC_MD)';
  if (process.env.CI === 'true') test('SPEC.md is available', (t) => t.fail(why));
  else {
    console.warn(`\n*** deploy/crosscheck: SKIPPING checks against SPEC.md: ${why} ***\n`);
    test.skip(`cross-checks against SPEC.md — SKIPPED: ${why}`, () => {});
  }
}

test('SPEC.md defaults and the config schema agree', (t) => {
  if (!spec) return t.pass();
  const problems: string[] = [];
  let compared = 0;
  for (const [key, specDefault] of spec.configDefaults) {
    if (!configKeys().includes(key)) {
      problems.push(`SPEC.md documents ${key}, the config schema has no such key`);
      continue;
    }
    if (specDefault.includes('<')) continue; // derived, e.g. <stateDir>/northbound_host_key
    compared++;
    const actual = schemaDefault(key);
    if (String(actual) !== specDefault) problems.push(`${key}: SPEC.md says ${specDefault}, schema default is ${String(actual)}`);
  }
  t.true(compared >= 8, `only ${compared} defaults compared: did the SPEC.md table change shape?`);
  t.deepEqual(problems, [], problems.join('\n'));
});

test('TLS call home is on by default, as SPEC.md says (the manifest checks then require its port)', (t) => {
  if (!spec) return t.pass();
  // SPEC.md once gave callhome.tls.enabled a provisional "false until TLS lands"; it now
  // documents the plain default. Either way the schema must say true.
  const provisional = spec.provisionalDefaults.get('callhome.tls.enabled');
  if (provisional) t.regex(provisional.until, /TLS lands/);
  else t.is(spec.configDefaults.get('callhome.tls.enabled'), 'true');
  t.is(schemaDefault('callhome.tls.enabled'), true, 'TLS call home is in this version');
  t.is(loadConfig([], {}).callhome.tls.enabled, true);
});

// ---------------------------------------------------------------------------------------

interface Effective {
  config?: Config;
  error?: string;
  env: Record<string, string>;
}

function effectiveConfig(pod: PodView): Effective {
  const { values } = pod.env();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chgw-effective-'));
  const files: string[] = [];
  for (const file of pod.configArgs()) {
    const mounted = pod.resolve(file);
    if (mounted?.content === undefined) return { env: values, error: `--config ${file} is not a rendered ConfigMap/Secret file` };
    const local = path.join(dir, `${files.length}-${path.basename(file)}`);
    writeFileSync(local, mounted.content);
    files.push(local);
  }
  try {
    return { env: values, config: loadConfig(files, values) };
  } catch (err) {
    return { env: values, error: (err as Error).message };
  }
}

function allFileKeys(config: Config): [string, string][] {
  const out: [string, string][] = [];
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const [k, v] of Object.entries(node)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, [...prefix, k]);
      else if (/(File|^file)$/.test(k) && typeof v === 'string' && v !== '') out.push([[...prefix, k].join('.'), v]);
    }
  };
  walk(config as unknown as Record<string, unknown>, []);
  // The peer certificate files are read only in cluster mode (cluster.redis.url set).
  return config.cluster?.redis?.url ? out : out.filter(([k]) => !k.startsWith('cluster.'));
}

function preStopSeconds(container: Record<string, any>): number {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return 0;
  if (preStop.sleep?.seconds) return Number(preStop.sleep.seconds);
  const cmd = (preStop.exec?.command ?? []) as string[];
  const i = cmd.findIndex((c) => /(^|\/)sleep$/.test(c));
  return i >= 0 ? Number(cmd[i + 1] ?? 0) : 0;
}

function checkDeployment(objects: K8sObject[], pod: PodView, specDoc: Spec | undefined): string[] {
  const p: string[] = [];
  const where = describeObject(pod.deployment);
  const d = pod.deployment as any;
  const c = pod.container;
  const envNames = new Set(configEnvNames().values());

  // --- environment ------------------------------------------------------------------
  const { values, fromRefs } = pod.env();
  for (const name of [...Object.keys(values), ...fromRefs]) {
    if (name.startsWith('CHGW_') && !envNames.has(name)) p.push(`${where}: env ${name} is no configuration key (see configEnvNames())`);
  }
  // The downward API (pod name, pod IP) is fine; Secret or ConfigMap values are not.
  for (const name of fromRefs) {
    if (name.startsWith('CHGW_')) p.push(`${where}: env ${name} uses valueFrom; put secrets in files (*File keys), not env`);
  }
  for (const [name, value] of Object.entries(values)) {
    const ref = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/.exec(value);
    if (ref) p.push(`${where}: env ${name} refers to $(${ref[1]}), which no earlier env entry defines (Kubernetes leaves it as written)`);
  }
  const eff = effectiveConfig(pod);
  if (!eff.config) {
    p.push(`${where}: the gateway would refuse this configuration: ${eff.error}`);
    return p;
  }
  const config = eff.config;

  // --- ports ----------------------------------------------------------------------------
  const expectPort = (name: string, key: string, value: number) => {
    const actual = pod.portNumber(name);
    if (actual === undefined) p.push(`${where}: no container port named ${name} (for ${key})`);
    else if (actual !== value) p.push(`${where}: container port ${name} is ${actual} but ${key} is ${value}`);
  };
  expectPort('callhome-ssh', 'callhome.ssh.port', config.callhome.ssh.port);
  if (config.callhome.tls.enabled) expectPort('callhome-tls', 'callhome.tls.port', config.callhome.tls.port);
  expectPort('netconf', 'northbound.port', config.northbound.port);
  expectPort('http', 'http.port', config.http.port);
  const numbers = pod.ports().map((x) => x.containerPort);
  if (new Set(numbers).size !== numbers.length) p.push(`${where}: duplicate container ports ${numbers.join(', ')}`);
  for (const port of numbers) {
    if (port < 1024) {
      p.push(`${where}: container port ${port} < 1024 needs privilege the pod does not have (see deploy/README.md); listen high and map it in the Service`);
    }
  }

  // --- services ---------------------------------------------------------------------------
  const services = objects.filter((o) => o.kind === 'Service' && pod.selects((o as any).spec?.selector));
  const published = new Map<number, { service: K8sObject; port: number }[]>();
  // The gateway's own Services (Redis's, from the redis component, names another app).
  const appName = pod.labels['app.kubernetes.io/name'];
  for (const svc of objects.filter((o) => o.kind === 'Service' && o.metadata.labels?.['app.kubernetes.io/name'] === appName)) {
    if (!pod.selects((svc as any).spec?.selector)) p.push(`${describeObject(svc)}: its selector does not select the gateway pod`);
  }
  for (const svc of services) {
    for (const sp of (svc as any).spec.ports as { port: number; targetPort?: string | number; name?: string }[]) {
      const target = pod.portNumber(sp.targetPort ?? sp.port);
      if (target === undefined) {
        p.push(`${describeObject(svc)}: port ${sp.name ?? sp.port} targets ${sp.targetPort ?? sp.port}, which the container does not expose`);
        continue;
      }
      published.set(target, [...(published.get(target) ?? []), { service: svc, port: sp.port }]);
    }
  }
  const publishedAs = (containerPort: number) => published.get(containerPort) ?? [];
  const expectPublished = (key: string, containerPort: number, type?: string) => {
    const list = publishedAs(containerPort);
    if (list.length === 0) {
      p.push(`${where}: ${key} (container port ${containerPort}) is published by no Service`);
      return;
    }
    if (specDoc) {
      const wanted = specPort(specDoc, key);
      if (!list.some((x) => x.port === wanted)) {
        p.push(`${where}: ${key} is published as ${list.map((x) => x.port).join(', ')}, SPEC.md's port is ${wanted}`);
      }
    }
    if (type && !list.some((x) => (x.service as any).spec.type === type)) {
      p.push(`${where}: ${key} should be published by a Service of type ${type}`);
    }
  };
  expectPublished('callhome.ssh.port', config.callhome.ssh.port, 'LoadBalancer');
  if (config.callhome.tls.enabled) expectPublished('callhome.tls.port', config.callhome.tls.port, 'LoadBalancer');
  expectPublished('northbound.port', config.northbound.port);
  expectPublished('http.port', config.http.port);
  if (clusterMode(config)) expectPublished('cluster.peer.port', config.cluster.peer.port);
  for (const { service } of [...publishedAs(config.callhome.ssh.port), ...publishedAs(config.callhome.tls.port)]) {
    if ((service as any).spec.externalTrafficPolicy !== 'Local') {
      p.push(`${describeObject(service)}: call-home Service needs externalTrafficPolicy: Local to keep device addresses`);
    }
  }

  // --- probes -------------------------------------------------------------------------------
  const probe = (kind: string, wantPath: string, required: boolean) => {
    const pr = c[kind];
    if (!pr) {
      if (required) p.push(`${where}: no ${kind}`);
      return;
    }
    const get = pr.httpGet;
    if (!get) return p.push(`${where}: ${kind} is not an httpGet probe`);
    if (get.path !== wantPath) p.push(`${where}: ${kind} path ${get.path}, want ${wantPath}`);
    if (specDoc && !specDoc.httpPaths.has(get.path)) p.push(`${where}: ${kind} path ${get.path} is not in SPEC.md's HTTP table`);
    if (pod.portNumber(get.port) !== config.http.port) p.push(`${where}: ${kind} port ${get.port} is not http.port ${config.http.port}`);
  };
  probe('livenessProbe', '/healthz', true);
  probe('readinessProbe', '/readyz', true);
  probe('startupProbe', '/healthz', false);

  // --- pod shape and security -------------------------------------------------------------
  const ps = pod.podSpec;
  const replicas = d.spec.replicas ?? 1;
  if (clusterMode(config)) {
    if (replicas < 2) p.push(`${where}: cluster mode with ${replicas} replica: run at least 2 (the base runs 3)`);
    if (d.spec.strategy?.type === 'Recreate') p.push(`${where}: strategy Recreate stops every replica at once; use RollingUpdate`);
  } else {
    if (replicas !== 1) p.push(`${where}: replicas ${replicas} without cluster.redis.url: standalone replicas hold disjoint devices`);
    if (d.spec.strategy?.type !== 'Recreate') p.push(`${where}: strategy must be Recreate without cluster mode (never two gateways at once)`);
  }
  if (ps.enableServiceLinks !== false) p.push(`${where}: enableServiceLinks must be false (strict CHGW_ env parsing)`);
  if (ps.automountServiceAccountToken !== false) p.push(`${where}: automountServiceAccountToken should be false`);
  const sc = { ...(ps.securityContext ?? {}), ...(c.securityContext ?? {}) };
  if (sc.runAsNonRoot !== true) p.push(`${where}: runAsNonRoot must be true`);
  if (c.securityContext?.readOnlyRootFilesystem !== true) p.push(`${where}: readOnlyRootFilesystem must be true`);
  if (c.securityContext?.allowPrivilegeEscalation !== false) p.push(`${where}: allowPrivilegeEscalation must be false`);
  if (c.securityContext?.privileged === true) p.push(`${where}: must not be privileged`);
  const caps = c.securityContext?.capabilities ?? {};
  if (!(caps.drop ?? []).includes('ALL')) p.push(`${where}: capabilities must drop ALL`);
  if ((caps.add ?? []).length > 0) p.push(`${where}: capabilities.add ${caps.add} is useless for a non-root process with no_new_privs`);
  const imageUser = dockerfileUser(readDockerfile());
  if (imageUser && sc.runAsUser !== undefined && sc.runAsUser !== imageUser.uid) {
    p.push(`${where}: runAsUser ${sc.runAsUser} differs from the image's USER ${imageUser.uid}`);
  }
  const resources = c.resources ?? {};
  if (!resources.requests?.cpu || !resources.requests?.memory || !resources.limits?.memory) {
    p.push(`${where}: set cpu/memory requests and a memory limit`);
  }
  const grace = Number((config as any).shutdown?.grace ?? schemaDefault('shutdown.grace') ?? 30);
  const tgps = Number(ps.terminationGracePeriodSeconds ?? 30);
  const preStop = preStopSeconds(c);
  if (!(tgps > grace + preStop)) {
    p.push(`${where}: terminationGracePeriodSeconds ${tgps} must exceed shutdown.grace ${grace} + preStop ${preStop}`);
  }

  // --- files: stateDir, --config, every *File key, inventory, users -----------------------
  const state = pod.resolve(config.stateDir);
  if (!path.posix.isAbsolute(config.stateDir)) p.push(`${where}: stateDir ${config.stateDir} should be absolute in a pod`);
  else if (!state) p.push(`${where}: stateDir ${config.stateDir} is on no volume (the root filesystem is read-only)`);
  else if (clusterMode(config)) {
    // State lives in Redis; a volume claim would pin replicas to a ReadWriteOnce volume.
    if (state.readOnly || state.source !== 'emptyDir') {
      p.push(`${where}: stateDir ${config.stateDir} must be a writable emptyDir in cluster mode (it is ${state.source}${state.readOnly ? ', read-only' : ''})`);
    }
  } else if (state.readOnly || state.source !== 'persistentVolumeClaim') {
    p.push(`${where}: stateDir ${config.stateDir} must be a writable PersistentVolumeClaim mount (it is ${state.source}${state.readOnly ? ', read-only' : ''})`);
  } else if (!state.rendered) p.push(`${where}: PersistentVolumeClaim ${state.sourceName} is not part of the manifests`);

  const fileKeys = allFileKeys(config);
  if (!fileKeys.some(([k]) => k === 'inventory.file') || !fileKeys.some(([k]) => k === 'users.file')) {
    p.push(`${where}: inventory.file and users.file must be set`);
  }
  for (const [key, file] of fileKeys) {
    // Generated there by a standalone gateway; in cluster mode every replica needs the same key.
    if (key === 'northbound.hostKeyFile' && !clusterMode(config) && state && file.startsWith(`${config.stateDir}/`)) continue;
    const m = pod.resolve(file);
    if (!m) p.push(`${where}: ${key} = ${file} is on no mounted volume`);
    else if (m.source !== 'configMap' && m.source !== 'secret') p.push(`${where}: ${key} = ${file} should come from a ConfigMap or Secret, not ${m.source}`);
    else if (m.rendered && m.content === undefined) p.push(`${where}: ${key} = ${file}: ${m.source} ${m.sourceName} has no key ${m.key}`);
  }
  for (const m of (c.volumeMounts ?? []) as Record<string, any>[]) {
    if (m.subPath) p.push(`${where}: volumeMount ${m.name} uses subPath, which never sees ConfigMap/Secret updates`);
  }

  const inventory = pod.resolve(config.inventory.file);
  if (inventory?.content !== undefined) {
    let doc: any;
    try {
      doc = YAML.parse(inventory.content);
    } catch (err) {
      p.push(`${where}: inventory ${config.inventory.file} is not YAML: ${(err as Error).message}`);
    }
    const devices = (doc?.devices ?? []) as Record<string, any>[];
    const ids = new Set<string>();
    for (const dev of devices) {
      if (typeof dev.id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(dev.id)) p.push(`${where}: inventory device id ${dev.id} is invalid`);
      if (ids.has(dev.id)) p.push(`${where}: inventory device id ${dev.id} twice`);
      ids.add(dev.id);
      const creds = { ...(doc?.defaults?.credentials ?? {}), ...(dev.credentials ?? {}) };
      for (const [k, v] of Object.entries(creds)) {
        if (!/File$/.test(k)) continue;
        const m = pod.resolve(String(v));
        if (!m) p.push(`${where}: device ${dev.id} ${k} ${v} is on no mounted volume`);
        else if (m.source !== 'secret') p.push(`${where}: device ${dev.id} ${k} ${v} should come from a Secret, not ${m.source}`);
        else if (m.rendered && m.content === undefined) p.push(`${where}: device ${dev.id} ${k}: Secret ${m.sourceName} has no key ${m.key}`);
      }
      if (typeof creds.password === 'string') {
        p.push(`${where}: device ${dev.id} has a plain password in the inventory ConfigMap; use passwordFile from the Secret`);
      }
      if (dev.port !== undefined) {
        const port = Number(dev.port);
        if (!pod.ports().some((x) => x.containerPort === port)) p.push(`${where}: device ${dev.id} port ${port} has no container port`);
        else if (publishedAs(port).length === 0) p.push(`${where}: device ${dev.id} port ${port} is published by no Service`);
        else if (!publishedAs(config.northbound.port).some((x) => publishedAs(port).some((y) => y.service === x.service))) {
          p.push(`${where}: device ${dev.id} port ${port} should be on the same Service as northbound.port`);
        }
      }
    }
  } else if (inventory && !inventory.rendered) {
    // created out of band: nothing to read
  }
  const users = pod.resolve(config.users.file);
  if (users?.content !== undefined) {
    try {
      const doc = YAML.parse(users.content) as { users?: unknown };
      if (!Array.isArray(doc?.users)) p.push(`${where}: users file has no users: list`);
    } catch (err) {
      p.push(`${where}: users file is not YAML: ${(err as Error).message}`);
    }
  }

  // --- NetworkPolicy, PDB -------------------------------------------------------------------
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy' && pod.selects((o as any).spec?.podSelector?.matchLabels));
  if (policies.length === 0) p.push(`${where}: no NetworkPolicy selects the gateway pod`);
  for (const port of pod.ports()) {
    const allowed = policies.some((np) =>
      ((np as any).spec.ingress ?? []).some((rule: any) => (rule.ports ?? []).some((rp: any) => pod.portNumber(rp.port) === port.containerPort)),
    );
    if (!allowed) p.push(`${where}: container port ${port.name ?? port.containerPort} is allowed by no NetworkPolicy ingress rule`);
  }
  for (const np of policies) {
    for (const rule of ((np as any).spec.ingress ?? []) as any[]) {
      for (const rp of rule.ports ?? []) {
        if (pod.portNumber(rp.port) === undefined) p.push(`${describeObject(np)}: port ${rp.port} is no container port`);
      }
    }
  }
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  if (!pdbs.some((pdb) => pod.selects((pdb as any).spec?.selector?.matchLabels))) p.push(`${where}: no PodDisruptionBudget selects the gateway pod`);
  if (clusterMode(config)) p.push(...clusterProblems(objects, pod, config));

  // --- ServiceMonitor ------------------------------------------------------------------------
  for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const selected = objects.filter((o) => o.kind === 'Service' && Object.entries((sm as any).spec.selector?.matchLabels ?? {}).every(([k, v]) => o.metadata.labels?.[k] === v));
    if (selected.length !== 1) p.push(`${describeObject(sm)}: selects ${selected.length} Services, want exactly the HTTP one`);
    for (const ep of (sm as any).spec.endpoints as { port?: string; path?: string }[]) {
      const svcPort = selected.flatMap((s) => (s as any).spec.ports).find((sp: any) => sp.name === ep.port);
      if (!svcPort) p.push(`${describeObject(sm)}: endpoint port ${ep.port} is not a named port of the selected Service`);
      else if (pod.portNumber(svcPort.targetPort ?? svcPort.port) !== config.http.port) {
        p.push(`${describeObject(sm)}: scrapes a port other than http.port`);
      }
      if ((ep.path ?? '/metrics') !== '/metrics' || (specDoc && !specDoc.httpPaths.has('/metrics'))) {
        p.push(`${describeObject(sm)}: scrape path ${ep.path} is not SPEC.md's /metrics`);
      }
    }
  }
  return p;
}

if (!renderer) {
  test.skip('manifest cross-checks — SKIPPED: kubectl not found (see kustomize.test)', () => {});
} else {
  for (const dir of kustomizeDirs()) {
    let objects: K8sObject[] = [];
    let renderError: string | undefined;
    try {
      objects = parseObjects(renderer.render(path.join(repoRoot, dir)));
    } catch (err) {
      renderError = (err as { stderr?: string }).stderr ?? String(err);
    }
    const pods = podViews(objects);
    if (!renderError && pods.length === 0) continue; // e.g. deploy/grafana
    test(`${dir}: manifests agree with the config schema and SPEC.md`, (t) => {
      if (renderError) return t.fail(`render failed: ${renderError}`);
      t.is(pods.length, 1, 'expected exactly one gateway Deployment');
      const problems = pods.flatMap((pod) => checkDeployment(objects, pod, spec));
      t.deepEqual(problems, [], problems.join('\n'));
    });
  }

  test('the cross-check finds a broken manifest', (t) => {
    const dir = path.join('deploy', 'overlays', 'example');
    const objects = parseObjects(renderer.render(path.join(repoRoot, dir))) as any[];
    const broken = structuredClone(objects);
    const dep = broken.find((o: any) => o.kind === 'Deployment');
    const c = dep.spec.template.spec.containers[0];
    c.env.push({ name: 'CHGW_NO_SUCH_KEY', value: '1' });
    let problems = checkDeployment(broken, podViews(broken)[0]!, spec);
    t.regex(problems.join('\n'), /CHGW_NO_SUCH_KEY/);

    const broken2 = structuredClone(objects);
    const c2 = broken2.find((o: any) => o.kind === 'Deployment').spec.template.spec.containers[0];
    c2.env = c2.env.map((e: any) => (e.name === 'CHGW_HTTP_PORT' ? { ...e, value: '9900' } : e));
    c2.readinessProbe.httpGet.path = '/ready';
    problems = checkDeployment(broken2, podViews(broken2)[0]!, spec);
    t.regex(problems.join('\n'), /container port http is 9834 but http.port is 9900/);
    t.regex(problems.join('\n'), /readinessProbe path \/ready/);

    const broken3 = structuredClone(objects);
    broken3.find((o: any) => o.kind === 'Secret' && o.metadata.name === 'callhome-gateway-secrets').data = {};
    broken3.find((o: any) => o.kind === 'Deployment').spec.template.spec.terminationGracePeriodSeconds = 30;
    problems = checkDeployment(broken3, podViews(broken3)[0]!, spec);
    t.regex(problems.join('\n'), /Secret callhome-gateway-secrets has no key edge-1.password/);
    t.regex(problems.join('\n'), /terminationGracePeriodSeconds 30 must exceed/);
  });
}
