// The Kubernetes side of cluster mode (issue "Scale out", SPEC.md "Cluster mode"): three
// replicas that can lose one, spread over nodes, reaching each other only on the peer port,
// one identity from Secrets, no volume claim, and Redis either from the optional component
// or from outside. Offline: kubectl kustomize plus the real redis-server for redis.conf.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { configEnvNames, loadConfig } from '../../src/config/load.js';
import { clusterMode } from '../../src/config/schema.js';
import { BIN } from '../e2e/peers/constants.js';
import { freePort, sleep } from '../e2e/peers/util.js';
import { clusterProblems, gatewayPolicies, redisAddress, selectedWorkload } from './helpers/cluster.js';
import { findRenderer, kustomizeDirs, overlayDirs, parseObjects, repoRoot, type K8sObject } from './helpers/k8s.js';
import { PodView, podViews, SAMPLE_POD_FIELDS } from './helpers/pod.js';
import { loadSpec, specPort } from './helpers/spec.js';

const renderer = findRenderer();
const GATEWAY = { 'app.kubernetes.io/name': 'callhome-gateway', 'app.kubernetes.io/component': 'gateway' };
const IDENTITY: [string, string][] = [
  ['CHGW_NORTHBOUND_HOSTKEYFILE', 'northbound_host_key'],
  ['CHGW_CALLHOME_TLS_CERTFILE', 'gateway.crt'],
  ['CHGW_CALLHOME_TLS_KEYFILE', 'gateway.key'],
  ['CHGW_CLUSTER_PEER_CAFILE', 'ca.crt'],
  ['CHGW_CLUSTER_PEER_CERTFILE', 'peer.crt'],
  ['CHGW_CLUSTER_PEER_KEYFILE', 'peer.key'],
];

/** The effective config of a pod (its --config files as rendered, plus env), as the gateway loads it. */
function podConfig(pod: PodView) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chgw-cluster-'));
  try {
    const files = pod.configArgs().map((file, i) => {
      const local = path.join(dir, `${i}.yaml`);
      writeFileSync(local, pod.resolve(file)?.content ?? '');
      return local;
    });
    return loadConfig(files, pod.env().values);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs inline commands on one connection and returns everything Redis answered. */
function redisSession(port: number, commands: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    s.setTimeout(5000, () => s.destroy(new Error(`redis session timed out; so far: ${reply}`)));
    s.on('connect', () => s.write([...commands, 'QUIT'].map((c) => `${c}\r\n`).join('')));
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('close', () => resolve(reply));
    s.on('error', reject);
  });
}

test('SPEC.md and the config schema give the peer port the image exposes and the pod uses', (t) => {
  const spec = loadSpec();
  const port = loadConfig([], {}).cluster.peer.port;
  if (spec) t.is(specPort(spec, 'cluster.peer.port'), port);
  t.regex(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'), new RegExp(`^EXPOSE .*\\b${port}\\b`, 'm'));
});

if (!renderer) {
  test.skip('cluster manifests — SKIPPED: kubectl not found (see kustomize.test)', () => {});
} else {
  const cache = new Map<string, K8sObject[]>();
  const render = (dir: string) => {
    if (!cache.has(dir)) cache.set(dir, parseObjects(renderer.render(path.join(repoRoot, dir))));
    return cache.get(dir)!;
  };
  const base = () => render(path.join('deploy', 'base'));
  const gatewayPod = (objects: K8sObject[]) => podViews(objects)[0]!;

  test('deploy/base: three replicas rolled one at a time, a budget of two, spread by node', (t) => {
    const objects = base();
    const d = objects.find((o) => o.kind === 'Deployment') as any;
    t.is(d.spec.replicas, 3);
    t.deepEqual(d.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as any;
    t.is(pdb.spec.minAvailable, 2);
    t.true(pdb.spec.minAvailable < d.spec.replicas, 'a budget equal to the replicas blocks every drain');
    t.is(pdb.spec.maxUnavailable, undefined);
    t.deepEqual(pdb.spec.selector.matchLabels, GATEWAY);
    const [term] = d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
    t.is(term.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    t.deepEqual(term.podAffinityTerm.labelSelector.matchLabels, GATEWAY);
    t.is(d.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, undefined, 'preferred: fewer nodes than replicas still schedule');
  });

  test('deploy/base: every env name is a configuration key; replica id and peer address come from the downward API', (t) => {
    const pod = gatewayPod(base());
    const names = new Set(configEnvNames().values());
    const env = pod.container.env as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
    for (const e of env.filter((x) => x.name.startsWith('CHGW_'))) t.true(names.has(e.name), `${e.name} is a configuration key`);
    t.deepEqual(
      env.filter((x) => !x.name.startsWith('CHGW_')).map((x) => x.name),
      ['POD_IP'],
      'the only other variable feeds $(POD_IP)',
    );
    const byName = new Map(env.map((e) => [e.name, e]));
    t.is(byName.get('CHGW_CLUSTER_REPLICAID')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    t.is(byName.get('POD_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
    t.is(byName.get('CHGW_CLUSTER_PEER_ADVERTISE')?.value, '$(POD_IP):9835');
    const names2 = env.map((e) => e.name);
    t.true(names2.indexOf('POD_IP') < names2.indexOf('CHGW_CLUSTER_PEER_ADVERTISE'), 'POD_IP is defined before it is referenced');
    const config = podConfig(pod);
    t.true(clusterMode(config));
    t.is(config.cluster.replicaId, SAMPLE_POD_FIELDS['metadata.name']);
    t.is(config.cluster.peer.advertise, `${SAMPLE_POD_FIELDS['status.podIP']}:${config.cluster.peer.port}`);
    t.is(config.cluster.redis.url, 'redis://callhome-gateway-redis:6379/0');
  });

  test('deploy/base: the headless peer Service selects the gateway pods on cluster.peer.port', (t) => {
    const objects = base();
    const pod = gatewayPod(objects);
    const port = podConfig(pod).cluster.peer.port;
    t.is(pod.portNumber('peer'), port);
    const peers = objects.filter((o) => o.kind === 'Service' && (o as any).spec.ports.some((p: any) => pod.portNumber(p.targetPort) === port)) as any[];
    t.deepEqual(
      peers.map((s) => s.metadata.name),
      ['callhome-gateway-peers'],
      'only the peer Service publishes the peer port',
    );
    const [svc] = peers;
    t.is(svc.spec.clusterIP, 'None');
    t.deepEqual(svc.spec.selector, GATEWAY);
    t.deepEqual(svc.spec.ports, [{ name: 'peer', port, targetPort: 'peer', protocol: 'TCP' }]);
  });

  test('deploy/base: the NetworkPolicy lets only gateway pods reach the peer port, and lets the gateway reach DNS, Redis and its peers', (t) => {
    const objects = base();
    const pod = gatewayPod(objects);
    const [np] = gatewayPolicies(objects, pod);
    const peerRules = (np!.spec.ingress as any[]).filter((r) => !r.ports || r.ports.some((p: any) => pod.portNumber(p.port) === 9835));
    t.deepEqual(peerRules, [{ from: [{ podSelector: { matchLabels: GATEWAY } }], ports: [{ port: 'peer', protocol: 'TCP' }] }]);
    t.true(
      (np!.spec.ingress as any[]).every((r) => r.ports?.length > 0),
      'no ingress rule opens every port',
    );
    const egress = np!.spec.egress as any[];
    t.true(
      egress.some((r) => r.ports.some((p: any) => p.port === 53 && p.protocol === 'UDP')),
      'DNS',
    );
    t.true(
      egress.some((r) => r.to[0].podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'callhome-gateway-redis' && r.ports[0].port === 6379),
      'Redis',
    );
    t.true(
      egress.some((r) => r.ports[0].port === 'peer' && r.to[0].podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'gateway'),
      'peers',
    );
  });

  test('deploy/base: host key, certificates and Redis password are Secret files at the configured paths', (t) => {
    const pod = gatewayPod(base());
    const { values } = pod.env();
    for (const [name, key] of IDENTITY) {
      const m = pod.resolve(values[name]!);
      t.like(m, { source: 'secret', sourceName: 'callhome-gateway-identity', key, readOnly: true }, name);
    }
    t.like(pod.resolve(values.CHGW_CLUSTER_REDIS_PASSWORDFILE!), { source: 'secret', sourceName: 'callhome-gateway-redis', key: 'password', readOnly: true });
    const config = podConfig(pod);
    t.is(config.northbound.hostKeyFile, values.CHGW_NORTHBOUND_HOSTKEYFILE);
    t.is(config.cluster.peer.keyFile, values.CHGW_CLUSTER_PEER_KEYFILE);
    t.false(config.northbound.hostKeyFile.startsWith(`${config.stateDir}/`), 'not generated per replica into stateDir');
  });

  test('no volume claim for the gateway in any tree: stateDir is an emptyDir', (t) => {
    for (const dir of kustomizeDirs()) {
      const objects = render(dir);
      t.deepEqual(
        objects.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name),
        [],
        `${dir}: PersistentVolumeClaim objects`,
      );
      for (const pod of podViews(objects)) {
        t.deepEqual(
          ((pod.podSpec.volumes ?? []) as any[]).filter((v) => v.persistentVolumeClaim).map((v) => v.name),
          [],
          `${dir}: claim volumes`,
        );
        t.like(pod.resolve(podConfig(pod).stateDir), { source: 'emptyDir', readOnly: false }, dir);
      }
    }
    t.false(existsSync(path.join(repoRoot, 'deploy', 'base', 'pvc.yaml')));
  });

  test('the redis component builds alone: one Redis with a small volume, reachable from gateway pods only', (t) => {
    const objects = render(path.join('deploy', 'components', 'redis'));
    t.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'NetworkPolicy', 'Service', 'StatefulSet']);
    const sts = objects.find((o) => o.kind === 'StatefulSet') as any;
    t.is(sts.spec.replicas, 1);
    t.regex(sts.spec.template.spec.containers[0].image, /^docker\.io\/library\/(redis:7|valkey\/valkey:[78])/);
    t.deepEqual(sts.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: '1Gi' });
    const c = sts.spec.template.spec.containers[0];
    t.truthy(c.resources.limits.memory, 'a memory limit');
    t.like(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    const secret = (sts.spec.template.spec.volumes as any[]).find((v) => v.secret)?.secret.secretName;
    t.is(secret, 'callhome-gateway-redis', 'the server reads the password the gateway sends (cluster.redis.passwordFile)');
    t.regex(c.command.join(' '), /--requirepass/);
    const svc = objects.find((o) => o.kind === 'Service') as any;
    t.is(svc.metadata.name, redisAddress(podConfig(gatewayPod(base())).cluster.redis.url).host, "the base's URL names this Service");
    t.is(selectedWorkload(objects, svc.spec.selector), sts);
    const np = objects.find((o) => o.kind === 'NetworkPolicy') as any;
    t.deepEqual(np.spec.ingress, [{ from: [{ podSelector: { matchLabels: GATEWAY } }], ports: [{ port: 'redis', protocol: 'TCP' }] }]);
    t.deepEqual(np.spec.egress, []);
  });

  test('with and without the component: the example runs its Redis, external-redis points at rediss with a password and an egress rule', (t) => {
    const example = render(path.join('deploy', 'overlays', 'example'));
    const pod = gatewayPod(example);
    t.is(example.filter((o) => o.kind === 'StatefulSet').length, 1);
    const url = redisAddress(podConfig(pod).cluster.redis.url);
    const svc = example.find((o) => o.kind === 'Service' && o.metadata.name === url.host) as any;
    t.truthy(svc, 'the URL names a rendered Service');
    t.is(svc.spec.ports[0].port, url.port);
    t.truthy(
      example.find((o) => o.kind === 'Secret' && o.metadata.name === 'callhome-gateway-redis'),
      'the example makes the password Secret both sides read',
    );

    const external = render(path.join('deploy', 'overlays', 'external-redis'));
    const epod = gatewayPod(external);
    t.deepEqual(
      external.filter((o) => ['StatefulSet', 'PersistentVolumeClaim'].includes(o.kind)),
      [],
    );
    const config = podConfig(epod);
    const ext = redisAddress(config.cluster.redis.url);
    t.true(ext.tls, 'rediss:// to a Redis outside the cluster');
    t.like(epod.resolve(config.cluster.redis.passwordFile), { source: 'secret', sourceName: 'callhome-gateway-redis', key: 'password' });
    const [np] = gatewayPolicies(external, epod);
    const rule = (np!.spec.egress as any[]).find((r) => r.ports.some((p: any) => p.port === ext.port));
    t.truthy(rule?.to[0].ipBlock?.cidr, 'egress to the external Redis by address');
    t.false(
      (np!.spec.egress as any[]).some((r) => r.to[0].podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'callhome-gateway-redis'),
      'no rule left for an in-cluster Redis that is not there',
    );
    t.deepEqual(clusterProblems(external, epod, config), []);
  });

  test('every overlay runs in cluster mode with its Redis either rendered or outside over TLS', (t) => {
    for (const dir of overlayDirs()) {
      const objects = render(dir);
      const pod = gatewayPod(objects);
      const config = podConfig(pod);
      t.true(clusterMode(config), `${dir}: cluster.redis.url`);
      const { host, tls } = redisAddress(config.cluster.redis.url);
      const rendered = objects.some((o) => o.kind === 'Service' && o.metadata.name === host.split('.')[0]);
      t.true(rendered || (tls && host.includes('.')), `${dir}: Redis ${host} is neither a rendered Service nor an external TLS host`);
    }
  });

  test('the cluster checks find broken manifests', (t) => {
    const objects = render(path.join('deploy', 'overlays', 'example'));
    const check = (mutate: (o: any[]) => void) => {
      const broken = structuredClone(objects) as any[];
      mutate(broken);
      const pod = gatewayPod(broken);
      return clusterProblems(broken, pod, podConfig(pod)).join('\n');
    };
    const dep = (o: any[]) => o.find((x) => x.kind === 'Deployment');
    const gwPolicy = (o: any[]) => o.find((x) => x.kind === 'NetworkPolicy' && x.metadata.name === 'callhome-gateway');
    const env = (o: any[], name: string) => dep(o).spec.template.spec.containers[0].env.find((e: any) => e.name === name);
    t.is(
      check(() => {}),
      '',
      'the example itself is clean',
    );
    t.regex(
      check((o) => (o.find((x) => x.kind === 'PodDisruptionBudget').spec.minAvailable = 3)),
      /minAvailable 3 must be at least 2 and below replicas 3/,
    );
    t.regex(
      check((o) => delete dep(o).spec.template.spec.affinity),
      /no pod anti-affinity/,
    );
    t.regex(
      check((o) => (gwPolicy(o).spec.ingress[3].from = [{ namespaceSelector: {} }])),
      /ingress rule 3 lets more than the gateway's own pods reach the peer port/,
    );
    t.regex(
      check((o) => gwPolicy(o).spec.ingress.push({ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] })),
      /ingress rule 4 lets more/,
    );
    t.regex(
      check((o) => gwPolicy(o).spec.egress.splice(2, 1)),
      /no egress rule lets a replica reach the other replicas' peer port/,
    );
    t.regex(
      check((o) => gwPolicy(o).spec.egress.splice(1, 1)),
      /no egress rule reaches the Redis pods/,
    );
    t.regex(
      check((o) => gwPolicy(o).spec.egress.splice(0, 1)),
      /no egress rule for DNS/,
    );
    t.regex(
      check((o) => delete o.find((x) => x.metadata.name === 'callhome-gateway-peers').spec.clusterIP),
      /headless/,
    );
    t.regex(
      check((o) => (env(o, 'CHGW_CLUSTER_PEER_ADVERTISE').value = '$(POD_IPS):9835')),
      /cluster.peer.advertise should be/,
    );
    t.regex(
      check((o) => (env(o, 'CHGW_CLUSTER_REPLICAID').valueFrom.fieldRef.fieldPath = 'spec.nodeName')),
      /cluster.replicaId should be the pod name/,
    );
    t.regex(
      check((o) => (env(o, 'CHGW_NORTHBOUND_HOSTKEYFILE').value = '/var/lib/callhome-gateway/northbound_host_key')),
      /northbound.hostKeyFile must be a file from a Secret/,
    );
    t.regex(
      check((o) => (dep(o).spec.template.spec.containers[0].env = dep(o).spec.template.spec.containers[0].env.filter((e: any) => e.name !== 'CHGW_CALLHOME_TLS_CERTFILE'))),
      /callhome.tls.certFile must be a file from a Secret/,
    );
  });
}

// --- the component's redis.conf on a real redis-server -----------------------------------

const redisTitle = "the redis component's redis.conf runs a real redis-server: password required, append-only, no eviction";
if (!existsSync(BIN.redisServer)) {
  const why = `${BIN.redisServer} not found (Debian package redis-server; bash test/peers/install.sh)`;
  if (process.env.CI === 'true') test(redisTitle, (t) => t.fail(why));
  else {
    console.warn(`\n*** deploy/cluster: SKIPPING "${redisTitle}": ${why} ***\n`);
    test.skip(`${redisTitle} — SKIPPED: ${why}`, () => {});
  }
} else {
  test(redisTitle, async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'chgw-redis-conf-'));
    const port = await freePort('127.0.0.1');
    // The pod's file with the pod's address, port and data directory mapped onto this machine.
    const conf = readFileSync(path.join(repoRoot, 'deploy', 'components', 'redis', 'redis.conf'), 'utf8')
      .replace(/^port .*$/m, `port ${port}`)
      .replace(/^bind .*$/m, 'bind 127.0.0.1')
      .replace(/^dir .*$/m, `dir ${dir}`);
    writeFileSync(path.join(dir, 'redis.conf'), conf);
    const child = spawn(BIN.redisServer, [path.join(dir, 'redis.conf'), '--requirepass', 'pw-from-secret'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    try {
      let answer = '';
      for (let i = 0; i < 100 && child.exitCode === null; i++) {
        answer = await redisSession(port, ['PING']).catch(() => '');
        if (answer) break;
        await sleep(50);
      }
      t.is(child.exitCode, null, `redis-server refused the component's redis.conf:\n${output}`);
      t.regex(answer, /^-NOAUTH/, 'no command without the password');
      const session = await redisSession(port, ['AUTH pw-from-secret', 'PING', 'CONFIG GET appendonly', 'CONFIG GET maxmemory-policy', 'CONFIG GET save', 'SET chgw:test 1']);
      t.regex(session, /^\+OK\r\n\+PONG\r\n/);
      t.regex(session, /appendonly\r\n\$3\r\nyes/);
      t.regex(session, /maxmemory-policy\r\n\$10\r\nnoeviction/);
      t.regex(session, /save\r\n\$0\r\n/);
      await sleep(1200); // appendfsync everysec
      t.true(existsSync(path.join(dir, 'appendonlydir')) || existsSync(path.join(dir, 'appendonly.aof')), 'the append-only file is written');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
