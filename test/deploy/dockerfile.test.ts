// The Dockerfile's contract, checked without a Docker engine: stages, base image, ports
// against SPEC.md, non-root user, healthcheck, no secrets in layers, a build context that
// carries only what the build reads.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/k8s.js';
import { dockerfileUser, execForm, readDockerIgnore, readDockerfile, resolvedFrom } from './helpers/dockerfile.js';
import { loadSpec, specPort } from './helpers/spec.js';
import { loadConfig } from '../../src/config/load.js';

const df = readDockerfile();
const all = df.stages.flatMap((s) => s.instructions);
const final = df.stages.at(-1)!;
const schemaPeerPort = () => loadConfig([], {}).cluster.peer.port;

/** Node.js release lines in Active or Maintenance LTS (Node 20 reached end of life in April 2026). */
const SUPPORTED_NODE_LTS = /^node:(22|24)(\.\d+)*-slim(@sha256:[0-9a-f]{64})?$/;

test('multi-stage build on a supported Node LTS slim image; the runtime stage has no toolchain', (t) => {
  t.true(df.stages.length >= 2, 'want a build stage and a runtime stage');
  for (const stage of df.stages) {
    const from = resolvedFrom(df, stage);
    const isStage = df.stages.some((s) => s.name === from);
    t.true(isStage || SUPPORTED_NODE_LTS.test(from), `stage ${stage.name ?? '?'} is based on ${from}`);
  }
  t.regex(resolvedFrom(df, final), SUPPORTED_NODE_LTS, 'runtime stage must start from the slim node image, not from a build stage');
  const runs = (s: typeof final) =>
    s.instructions
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
  t.notRegex(runs(final), /apt-get install|npm (ci|install)/, 'the runtime stage installs nothing');
  const toolchain = df.stages.filter((s) => /python3/.test(runs(s)) && /\bg\+\+/.test(runs(s)) && /\bmake\b/.test(runs(s)));
  t.true(toolchain.length >= 1, 'a build stage installs python3, make and g++ for ssh2 and cpu-features');
});

test('production dependencies come from npm ci --omit=dev, and the build fails without the ssh2 binding', (t) => {
  const runs = all.filter((i) => i.op === 'RUN').map((i) => i.args);
  t.true(
    runs.some((r) => /npm ci\b[^&]*--omit=dev/.test(r)),
    'npm ci --omit=dev',
  );
  t.true(
    runs.some((r) => /bindingAvailable/.test(r)),
    'a RUN asserts ssh2/lib/protocol/crypto.js bindingAvailable',
  );
  const copies = final.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
  t.true(
    copies.some((c) => /--from=\S+\s+\S*node_modules/.test(c)),
    'the runtime stage copies node_modules from a stage',
  );
  t.true(
    copies.some((c) => /--from=\S+\s+\S*dist\/src/.test(c)),
    'the runtime stage copies the built dist/src',
  );
});

test('the production install applies patches/ (ssh2 packet path) and checks that it did', (t) => {
  const stage = df.stages.find((st) => st.instructions.some((i) => i.op === 'RUN' && /npm ci\b[^&]*--omit=dev/.test(i.args)));
  if (!stage) return t.fail('no stage runs npm ci --omit=dev');
  const copyPatches = stage.instructions.findIndex((i) => i.op === 'COPY' && /^patches\s/.test(i.args));
  const install = stage.instructions.findIndex((i) => i.op === 'RUN' && /npm ci\b/.test(i.args));
  t.true(copyPatches >= 0 && copyPatches < install, 'patches/ is copied before npm ci, whose postinstall applies it');
  t.regex(stage.instructions[install]!.args, /makeSocketWriter/, 'the install asserts that the ssh2 patch is applied');
});

test('EXPOSE lists the SPEC.md default ports', (t) => {
  const spec = loadSpec();
  if (!spec) return t.pass('SPEC.md not found: see crosscheck.test');
  const exposed = new Set(final.instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0]))));
  const wanted = ['callhome.ssh.port', 'callhome.tls.port', 'northbound.port', 'http.port', 'cluster.peer.port'].map((k) => specPort(spec, k));
  t.deepEqual([...exposed].sort(), [...wanted].sort());
});

test('OCI labels describe the image', (t) => {
  const labels = new Map<string, string>();
  for (const i of final.instructions.filter((x) => x.op === 'LABEL')) {
    for (const m of i.args.matchAll(/([\w.-]+)="([^"]*)"/g)) labels.set(m[1]!, m[2]!);
  }
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; license: string };
  const oci = (k: string) => labels.get(`org.opencontainers.image.${k}`);
  t.is(oci('title'), pkg.name);
  t.is(oci('licenses'), pkg.license);
  t.truthy(oci('description'));
  // Filled in per build from build arguments, each declared in the runtime stage.
  const args = new Set(final.instructions.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]!));
  for (const [key, arg] of [
    ['version', 'VERSION'],
    ['revision', 'REVISION'],
    ['created', 'CREATED'],
    ['source', 'SOURCE'],
    ['base.name', 'NODE_IMAGE'],
  ]) {
    t.is(oci(key!), `\${${arg}}`, `org.opencontainers.image.${key} from --build-arg ${arg}`);
    t.true(args.has(arg!), `ARG ${arg} in the runtime stage`);
  }
});

test('the sample docker run publishes every exposed port a standalone gateway listens on', (t) => {
  // The peer port is listened on only in cluster mode (cluster.redis.url), which a single
  // `docker run` sample does not use.
  const peerPort = String(schemaPeerPort());
  const exposed = final.instructions
    .filter((i) => i.op === 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/).map((p) => p.split('/')[0]!))
    .filter((p) => p !== peerPort);
  t.true(exposed.length >= 4, exposed.join(' '));
  const samples = [readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'), readFileSync(path.join(repoRoot, 'docs', 'OPERATIONS.md'), 'utf8')];
  for (const text of samples) {
    const run = /docker run (?:[^\n]*\\\n)*[^\n]*/.exec(text.replace(/^#\s?/gm, ''))?.[0] ?? '';
    t.truthy(run, 'a docker run sample');
    for (const port of exposed) t.regex(run, new RegExp(`-p ${port}:${port}\\b`), `docker run sample publishes ${port}: ${run}`);
  }
});

test('runs as a numeric non-root user', (t) => {
  const user = dockerfileUser(df);
  t.truthy(user, 'final stage needs USER uid:gid (numeric, so runAsNonRoot can verify it)');
  t.true(user!.uid > 0);
  t.true(user!.gid !== undefined && user!.gid > 0);
});

test('HEALTHCHECK runs node against /healthz (no curl in slim) and the script is in the image', (t) => {
  const hc = final.instructions.find((i) => i.op === 'HEALTHCHECK');
  t.truthy(hc, 'HEALTHCHECK');
  const cmd = execForm(hc!.args.replace(/^(--\S+\s+)*CMD\s+/, ''));
  t.is(cmd[0], 'node');
  t.notRegex(hc!.args, /curl|wget/);
  const script = cmd[1]!;
  const copy = final.instructions.find((i) => i.op === 'COPY' && path.posix.basename(i.args.split(/\s+/).at(-1)!) === path.posix.basename(script));
  t.truthy(copy, `${script} is copied into the runtime stage`);
  const source = copy!.args.split(/\s+/).filter((a) => !a.startsWith('--'))[0]!;
  t.true(existsSync(path.join(repoRoot, source)), `${source} exists`);
  t.regex(readFileSync(path.join(repoRoot, source), 'utf8'), /\/healthz/);
});

test('ENTRYPOINT runs the package bin; the image sets no CHGW_ variable', (t) => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const entry = final.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1);
  t.truthy(entry);
  const argv = execForm(entry!.args);
  t.is(argv[0], 'node');
  // node's flags (the gateway's heap flags, test/heap.test.ts), then the script
  const script = argv.slice(1).find((a) => !a.startsWith('-'));
  t.true(script?.endsWith(pkg.bin['callhome-gateway']!), `${script} runs ${pkg.bin['callhome-gateway']}`);
  // Environment variables beat --config files: a CHGW_ default baked into the image would
  // silently override the operator's config file.
  const envs = all.filter((i) => i.op === 'ENV').map((i) => i.args);
  t.false(
    envs.some((e) => /\bCHGW_/.test(e)),
    envs.join('\n'),
  );
});

test('no secrets in layers', (t) => {
  const secretish = /(PASSWORD|PASSWD|TOKEN|SECRET|PRIVATE|API_?KEY|NPM_?AUTH)/i;
  for (const i of all.filter((x) => x.op === 'ARG' || x.op === 'ENV')) {
    t.notRegex(i.args.split('=')[0]!, secretish, `line ${i.line}: ${i.op} ${i.args}`);
  }
  for (const i of all.filter((x) => x.op === 'COPY' || x.op === 'ADD')) {
    const sources = i.args
      .split(/\s+/)
      .filter((a) => !a.startsWith('--'))
      .slice(0, -1);
    t.false(sources.includes('.'), `line ${i.line}: COPY . copies the whole context`);
    t.false(
      sources.some((s) => /\.npmrc|\.env|\.pem|\.key|secrets?\//.test(s)),
      `line ${i.line}: ${i.args}`,
    );
  }
});

test('.dockerignore sends only what the build reads', (t) => {
  const ignore = readDockerIgnore();
  t.truthy(ignore, '.dockerignore exists');
  for (const p of [
    'node_modules/ssh2/package.json',
    'dist/src/cli/main.js',
    '.git/HEAD',
    'data/northbound_host_key',
    'test/deploy/x.ts',
    'deploy/overlays/example/kustomization.yaml',
    '.env',
    'src/secret.pem',
    'id_ed25519',
  ]) {
    t.false(ignore!.included(p), `${p} must not reach the build context`);
  }
  // Every COPY source that comes from the context must be included.
  for (const i of all.filter((x) => x.op === 'COPY' && !/--from=/.test(x.args))) {
    const sources = i.args
      .split(/\s+/)
      .filter((a) => !a.startsWith('--'))
      .slice(0, -1);
    for (const s of sources) {
      t.true(ignore!.included(s), `COPY ${s} (line ${i.line}) is excluded by .dockerignore`);
      t.true(existsSync(path.join(repoRoot, s)), `COPY ${s} (line ${i.line}) does not exist`);
    }
  }
  t.true(ignore!.included('src/cli/main.ts'));
});
