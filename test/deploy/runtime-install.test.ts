// The Dockerfile's runtime install, without Docker: the same `npm ci --omit=dev` into a
// temporary directory (as the prod-deps stage does), the ssh2 native binding must load
// there, and the gateway must start from that directory with the example overlay's own
// config, inventory, users and secrets, answer /healthz and /readyz, pass the image's
// HEALTHCHECK script, and expose every metric the dashboard and the alerts use.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { findRenderer, parseObjects, repoRoot, type K8sObject } from './helpers/k8s.js';
import { expositionMetricNames, unknownMetricUses, type MetricUse } from './helpers/metric-names.js';
import { podViews } from './helpers/pod.js';
import { freePort, waitFor } from '../helpers/wait.js';
import { logProblems } from '../helpers/log-schema.js';
import { loadConfig } from '../../src/config/load.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const healthcheck = path.join(repoRoot, 'deploy', 'docker', 'healthcheck.mjs');
const cliBuilt = existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'));

/** node-gyp must find node's headers locally (the image sets npm_config_nodedir too). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  const hasNodedir = Object.keys(env).some((k) => k.toLowerCase() === 'npm_config_nodedir');
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!hasNodedir && existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) env.npm_config_nodedir = prefix;
  return env;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Waits until `url` answers `status`; fails at once if the gateway exits. */
async function waitForStatus(url: string, status: number, child: ChildProcess, ms: number, output: () => string): Promise<void> {
  let last = 'no answer';
  await waitFor(
    `${url} to answer ${status}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode} before ${url} answered ${status}:\n${output()}`);
      const res = await get(url).catch((err: Error) => ({ status: 0, body: err.message }));
      last = res.status ? `${res.status}` : res.body;
      return res.status === status;
    },
    { timeoutMs: ms, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last: ${last}):\n${output()}`);
  });
}

function runHealthcheck(env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(cwd, 'healthcheck.mjs')], { cwd, env, stdio: 'ignore' });
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

/**
 * The gateway's identity as an operator makes it (deploy/README.md): a host key from
 * ssh-keygen, the CA and TLS client certificate from `certs init`, the peer certificate
 * from `certs peer`, all in the directory the identity Secret is mounted at.
 */
async function makeIdentity(cli: string, cwd: string, o: { hostKey: string; tlsDir: string; t: { log(...m: string[]): void } }): Promise<boolean> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'callhome-gateway', '-f', o.hostKey]);
  const pki = mkdtempSync(path.join(os.tmpdir(), 'chgw-pki-'));
  try {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, CHGW_STATEDIR: pki };
    await run(process.execPath, [cli, 'certs', 'init'], { cwd, env });
    for (const f of ['ca.crt', 'gateway.crt', 'gateway.key']) cpSync(path.join(pki, 'tls', f), path.join(o.tlsDir, f));
    try {
      await run(process.execPath, [cli, 'certs', 'peer', '--out', o.tlsDir], { cwd, env });
      return true;
    } catch (err) {
      // A build without cluster mode has no `certs peer` and reads no peer certificate.
      const stderr = (err as { stderr?: string }).stderr ?? '';
      if (!/unknown certs subcommand "peer"/.test(stderr)) throw err;
      o.t.log('this build has no `certs peer` (no cluster mode): peer certificate not made');
      return false;
    }
  } finally {
    rmSync(pki, { recursive: true, force: true });
  }
}

// --- the image's HEALTHCHECK script on its own --------------------------------------------

test('HEALTHCHECK script: 0 on 200 from /healthz, 1 on 503, 1 when nothing listens', async (t) => {
  let status = 200;
  let seenPath = '';
  const server = http.createServer((req, res) => {
    seenPath = req.url ?? '';
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chgw-hc-'));
  cpSync(healthcheck, path.join(dir, 'healthcheck.mjs'));
  const env = { PATH: process.env.PATH, CHGW_HTTP_PORT: String(port) };
  try {
    t.is(await runHealthcheck(env, dir), 0);
    t.is(seenPath, '/healthz');
    status = 503;
    t.is(await runHealthcheck(env, dir), 1);
    t.is(await runHealthcheck({ ...env, CHGW_HTTP_HOST: '127.0.0.1' }, dir), 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
  t.is(await runHealthcheck({ PATH: process.env.PATH, CHGW_HTTP_PORT: String(await freePort()) }, dir), 1);
  rmSync(dir, { recursive: true, force: true });
});

// --- npm ci --omit=dev, as the prod-deps stage -------------------------------------------

let installDir: string | undefined;
let installError: string | undefined;
const installed = (async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chgw-runtime-'));
  for (const f of ['package.json', 'package-lock.json', 'patches']) cpSync(path.join(repoRoot, f), path.join(dir, f), { recursive: true });
  try {
    // --prefer-offline: everything comes from the npm cache the project's own install filled.
    await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: dir,
      env: npmEnv(),
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    installDir = dir;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    installError = `${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`;
  }
  return dir;
})();

test.after.always(() => {
  if (installDir) rmSync(installDir, { recursive: true, force: true });
});

test('npm ci --omit=dev installs the production dependencies only', async (t) => {
  await installed;
  if (!installDir) return t.fail(`npm ci --omit=dev failed:\n${installError}`);
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies)) t.true(existsSync(path.join(installDir, 'node_modules', dep)), `${dep} installed`);
  // A dev dependency that a production package also needs (semver, through patch-package)
  // is marked so in the lockfile; every other one must stay out of the production install.
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const devOnly = Object.keys(pkg.devDependencies).filter((dev) => lock.packages[`node_modules/${dev}`]?.dev === true);
  t.true(devOnly.length >= Object.keys(pkg.devDependencies).length - 2, `dev-only packages per the lockfile: ${devOnly.join(', ')}`);
  for (const dev of devOnly) t.false(existsSync(path.join(installDir, 'node_modules', dev)), `${dev} must not be installed`);
});

test('the ssh2 native crypto binding builds and loads in the production install', async (t) => {
  await installed;
  if (!installDir) return t.fail(`npm ci --omit=dev failed:\n${installError}`);
  const { stdout } = await run(
    process.execPath,
    ['-e', "process.stdout.write(JSON.stringify({ binding: require('ssh2/lib/protocol/crypto.js').bindingAvailable, from: require.resolve('ssh2') }))"],
    { cwd: installDir },
  );
  const result = JSON.parse(stdout) as { binding: boolean; from: string };
  t.true(result.from.startsWith(installDir), `ssh2 resolved from ${result.from}`);
  t.true(result.binding, 'ssh2 fell back to JS crypto: sshcrypto.node did not build (python3, make, g++ and node headers needed)');
  t.true(existsSync(path.join(installDir, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node')));
});

test("npm ci's postinstall applies patches/ to ssh2 in the production install", async (t) => {
  await installed;
  if (!installDir) return t.fail(`npm ci --omit=dev failed:\n${installError}`);
  const { stdout } = await run(process.execPath, ['-e', "process.stdout.write(typeof require('ssh2/lib/utils.js').makeSocketWriter)"], { cwd: installDir });
  t.is(stdout, 'function', 'ssh2 is not patched: patch-package did not run or patches/ is missing');
});

// --- start the gateway from it, configured as the example overlay's pod ------------------

const startTitle = 'the gateway starts from the production install with the example overlay config';
const renderer = findRenderer();
if (!cliBuilt) {
  const why = 'dist/src/cli/main.js is not built (the CLI has not landed on this branch yet)';
  console.warn(`\n*** deploy/runtime-install: SKIPPING "${startTitle}": ${why} ***\n`);
  test.skip(`${startTitle} — SKIPPED: ${why}`, () => {});
} else if (!renderer) {
  const why = 'kubectl not found, cannot render the example overlay';
  if (process.env.CI === 'true') test(startTitle, (t) => t.fail(why));
  else {
    console.warn(`\n*** deploy/runtime-install: SKIPPING "${startTitle}": ${why} ***\n`);
    test.skip(`${startTitle} — SKIPPED: ${why}`, () => {});
  }
} else {
  let redis: TestRedis | undefined;
  test(startTitle, async (t) => {
    await installed;
    if (!installDir) return t.fail(`npm ci --omit=dev failed:\n${installError}`);
    const dir = installDir;
    // The runtime stage: node_modules from prod-deps, dist/src from build, the healthcheck.
    cpSync(path.join(repoRoot, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    cpSync(healthcheck, path.join(dir, 'healthcheck.mjs'));

    const objects: K8sObject[] = parseObjects(renderer.render(path.join(repoRoot, 'deploy', 'overlays', 'example')));
    const pod = podViews(objects)[0]!;
    const { root, hostPath } = pod.materialize();
    // Container paths now point into `root`; every listener gets a free or any port. The
    // pod's IP is loopback, its peer port a free one that it also advertises.
    const peerPort = await freePort();
    const { values } = pod.env({ 'metadata.name': 'callhome-gateway-runtime-0', 'status.podIP': '127.0.0.1' });
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    for (const [k, v] of Object.entries(values)) env[k] = v.startsWith('/') ? hostPath(v) : v;
    const httpPort = await freePort();
    for (const k of Object.keys(env)) if (/^CHGW_.*_PORT$/.test(k)) env[k] = '0';
    env.CHGW_HTTP_PORT = String(httpPort);
    for (const h of ['CHGW_CALLHOME_SSH_HOST', 'CHGW_CALLHOME_TLS_HOST', 'CHGW_NORTHBOUND_HOST', 'CHGW_HTTP_HOST', 'CHGW_CLUSTER_PEER_HOST']) env[h] = '127.0.0.1';
    t.is(env.CHGW_CLUSTER_PEER_ADVERTISE, `127.0.0.1:${values.CHGW_CLUSTER_PEER_PORT}`, 'the advertised peer address is the pod IP');
    env.CHGW_CLUSTER_PEER_PORT = String(peerPort);
    env.CHGW_CLUSTER_PEER_ADVERTISE = `127.0.0.1:${peerPort}`;
    // The Secrets created out of band (deploy/README.md), made the documented way, and a
    // real Redis with the password of the overlay's callhome-gateway-redis Secret.
    const cli = path.join(dir, 'dist', 'src', 'cli', 'main.js');
    const clusterBuild = await makeIdentity(cli, dir, { hostKey: env.CHGW_NORTHBOUND_HOSTKEYFILE!, tlsDir: path.dirname(env.CHGW_CALLHOME_TLS_CERTFILE!), t });
    redis = await startRedis('127.0.0.1');
    await redis.command('CONFIG', 'SET', 'requirepass', readFileSync(env.CHGW_CLUSTER_REDIS_PASSWORDFILE!, 'utf8').trim());
    env.CHGW_CLUSTER_REDIS_URL = `redis://127.0.0.1:${redis.port}/0`;
    const args = [...((pod.container.args ?? []) as string[])].map((a) => (a.startsWith('/') ? hostPath(a) : a));
    // Per-device ports (10830, …) become free ones.
    const config = loadConfig(pod.configArgs().map(hostPath), env);
    const inventory = YAML.parse(readFileSync(config.inventory.file, 'utf8')) as { devices?: { port?: number }[] } | null;
    for (const dev of inventory?.devices ?? []) if (dev.port !== undefined) dev.port = await freePort();
    writeFileSync(config.inventory.file, YAML.stringify(inventory));

    let output = '';
    // Started as the image's ENTRYPOINT starts it (node's flags included), from this install.
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'))?.[1] ?? '[]') as string[];
    t.is(entrypoint[0], 'node');
    const argv = entrypoint.slice(1).map((a) => (a.startsWith('/app/') ? path.join(dir, a.slice('/app/'.length)) : a));
    const child = spawn(process.execPath, [...argv, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    const out = () => output.slice(-4000);
    try {
      const base = `http://127.0.0.1:${httpPort}`;
      await waitForStatus(`${base}/healthz`, 200, child, 20_000, out);
      await waitForStatus(`${base}/readyz`, 200, child, 20_000, out);
      t.is(await runHealthcheck({ PATH: process.env.PATH, CHGW_HTTP_PORT: String(httpPort), CHGW_HTTP_HOST: '127.0.0.1' }, dir), 0);
      // One identity for every replica: the host key and the TLS client certificate are the
      // identity Secret's files, loaded, never generated per pod.
      const logged = output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      t.like(
        logged.find((l) => l.msg === 'loaded the northbound host key' || l.msg === 'generated the northbound host key'),
        {
          msg: 'loaded the northbound host key',
          file: env.CHGW_NORTHBOUND_HOSTKEYFILE,
          generated: false,
        },
      );
      t.like(
        logged.find((l) => l.msg === 'gateway TLS client certificate'),
        { file: env.CHGW_CALLHOME_TLS_CERTFILE, generated: false },
      );
      if (clusterBuild) {
        // Cluster mode came up on the pod's settings: named by the pod, reachable at its IP.
        const replicas = await get(`${base}/api/replicas`);
        t.is(replicas.status, 200, replicas.body);
        t.like(JSON.parse(replicas.body), [{ id: 'callhome-gateway-runtime-0', peer: `127.0.0.1:${peerPort}` }]);
      }
      // The gateway reports at start whether ssh2's native binding is in use.
      t.regex(output, /"nativeCrypto":true/, `the gateway did not report the native binding in use:\n${out()}`);
      t.regex(output, /V8 heap sized for bulk transfers/, `the gateway did not report the ENTRYPOINT's heap flags in effect:\n${out()}`);

      // Every metric the dashboard and the rules read, against this live /metrics.
      const live = expositionMetricNames((await get(`${base}/metrics`)).body);
      const uses: MetricUse[] = [];
      const recorded = new Set<string>();
      for (const o of objects.filter((x) => x.kind === 'PrometheusRule')) {
        for (const g of (o as any).spec.groups) {
          for (const r of g.rules) {
            if (r.record) recorded.add(r.record);
            uses.push({ where: `rule ${r.alert ?? r.record}`, expr: r.expr });
          }
        }
      }
      const dash = JSON.parse(readFileSync(path.join(repoRoot, 'deploy', 'grafana', 'callhome-gateway.json'), 'utf8'));
      for (const p of dash.panels) for (const tg of p.targets ?? []) uses.push({ where: `panel ${p.title}`, expr: tg.expr });
      const problems = unknownMetricUses(uses, live, recorded);
      t.deepEqual(problems, [], problems.join('\n'));

      // SIGTERM drains and exits cleanly (the pod's stop path).
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 40_000)))]);
      clearTimeout(timer);
      t.is(code, 0, `exit after SIGTERM:\n${out()}`);
      // What the pod writes is what a log pipeline reads: every line in the schema of
      // docs/LOGS.md, audit records included, and the last one says why it stopped.
      const lines = output.split('\n').filter(Boolean);
      t.deepEqual(logProblems(lines), []);
      t.like(JSON.parse(lines.at(-1)!), { msg: 'stopped: drained', exitCode: 0, signal: 'SIGTERM' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await redis?.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
}
