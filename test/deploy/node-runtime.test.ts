// The Node.js versions the project supports agree everywhere: package.json `engines`, the
// Dockerfile's base image, the README, and every locked dependency's own `engines` (so
// `npm ci` prints no EBADENGINE warning on the Node that runs this test, nor on the
// image's).
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { repoRoot } from './helpers/k8s.js';
import { readDockerfile, resolvedFrom } from './helpers/dockerfile.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean; optional?: boolean }>;
};

/** The Node.js major of the image's base (node:24-slim → 24). */
function imageNodeMajor(): number {
  const df = readDockerfile();
  const from = resolvedFrom(df, df.stages.at(-1)!);
  const m = /^node:(\d+)/.exec(from);
  if (!m) throw new Error(`runtime stage is based on ${from}, not node:N-slim`);
  return Number(m[1]);
}

/** The lockfile's packages whose declared engines.node excludes `version`. */
function excluding(version: string): string[] {
  return Object.entries(lock.packages)
    .filter(([name, p]) => name !== '' && p.engines && !Array.isArray(p.engines) && p.engines.node)
    .filter(([, p]) => !semver.satisfies(version, (p.engines as { node: string }).node, { includePrerelease: true }))
    .map(([name, p]) => `${name.replace(/^node_modules\//, '')} wants node ${(p.engines as { node: string }).node}`);
}

test('every locked dependency accepts the Node.js running the tests (npm ci prints no EBADENGINE)', (t) => {
  t.deepEqual(excluding(process.version), [], `on ${process.version}`);
});

test("every locked dependency accepts the image's Node.js line", (t) => {
  const major = imageNodeMajor();
  // The image follows its tag's newest release; any late minor of the line stands for it.
  t.deepEqual(excluding(`${major}.99.0`), [], `on node ${major}`);
});

test("package.json engines admit the image's Node.js and the one CI runs on", (t) => {
  t.true(semver.satisfies(`${imageNodeMajor()}.0.0`, pkg.engines.node), `engines ${pkg.engines.node}`);
  t.true(semver.satisfies(process.version, pkg.engines.node), `engines ${pkg.engines.node} vs ${process.version}`);
});

test("the README names the image's Node.js line as the supported runtime", (t) => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  t.regex(readme, new RegExp(`Node\\.js ${imageNodeMajor()}\\b[^.]*LTS`), 'README says which Node.js is supported');
});

test('the EBADENGINE check can fail', (t) => {
  t.false(semver.satisfies('20.20.2', '>=22'));
  t.true(semver.satisfies('20.20.2', '^20.19 || ^22.12 || >=23'));
});
