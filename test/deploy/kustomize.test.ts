// Every kustomization under deploy/ renders with `kubectl kustomize`, and every rendered
// object validates against the Kubernetes (and prometheus-operator CRD) schemas offline.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  describeObject,
  findRenderer,
  gatewayContainer,
  kustomizeDirs,
  overlayDirs,
  parseObjects,
  repoRoot,
  schemaProblems,
  strictFieldProblems,
  type K8sObject,
} from './helpers/k8s.js';

const renderer = findRenderer();
/** The image deploy/base names: no registry serves it, an overlay must replace it. */
const PLACEHOLDER_IMAGE = 'callhome-gateway:set-by-overlay';
const dirs = kustomizeDirs();

test('deploy/ has a base and at least one overlay', (t) => {
  t.true(dirs.includes(path.join('deploy', 'base')), `kustomizations found: ${dirs.join(', ')}`);
  t.true(overlayDirs().length >= 1, 'no overlay under deploy/overlays');
});

if (!renderer) {
  const why = 'neither kubectl nor kustomize found (set KUBECTL=/path/to/kubectl)';
  if (process.env.CI === 'true') {
    test('kubectl kustomize is available in CI', (t) => t.fail(why));
  } else {
    console.warn(`\n*** deploy/kustomize: SKIPPING rendering and schema validation: ${why} ***\n`);
    test.skip(`render and validate deploy/ — SKIPPED: ${why}`, () => {});
  }
} else {
  const rendered = new Map<string, K8sObject[]>();
  const render = (dir: string): K8sObject[] => {
    let objects = rendered.get(dir);
    if (!objects) {
      objects = parseObjects(renderer.render(path.join(repoRoot, dir)));
      rendered.set(dir, objects);
    }
    return objects;
  };

  for (const dir of dirs) {
    test(`${dir}: renders and validates against the Kubernetes schemas`, async (t) => {
      let objects: K8sObject[];
      try {
        objects = render(dir);
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        t.fail(`${renderer.describe} ${dir} failed: ${e.stderr?.trim() || e.message}`);
        return;
      }
      t.true(objects.length > 0, 'rendered nothing');
      const problems: string[] = [];
      for (const o of objects) {
        if (!o.apiVersion || !o.kind || !o.metadata?.name) {
          problems.push(`object without apiVersion/kind/metadata.name: ${JSON.stringify(o).slice(0, 120)}`);
          continue;
        }
        problems.push(...(await schemaProblems(o)));
      }
      const seen = new Set<string>();
      for (const o of objects) {
        const id = `${o.apiVersion} ${describeObject(o)}`;
        if (seen.has(id)) problems.push(`duplicate object ${id}`);
        seen.add(id);
      }
      t.deepEqual(problems, [], problems.join('\n'));
    });
  }

  test('no rendered object has a field its schema does not know (strict, like kubectl --validate=strict)', (t) => {
    const all = dirs.flatMap((dir) => {
      try {
        return render(dir);
      } catch {
        return []; // reported by the rendering test
      }
    });
    const problems = strictFieldProblems(all);
    t.deepEqual(problems, [], problems.join('\n'));
  });

  test('deploy/base needs no CRD: it applies on a cluster without the Prometheus Operator', (t) => {
    const base = render(path.join('deploy', 'base'));
    const core = /^(v1|apps\/v1|policy\/v1|networking\.k8s\.io\/v1|rbac\.authorization\.k8s\.io\/v1|batch\/v1|autoscaling\/v2)$/;
    t.deepEqual(
      base.filter((o) => !core.test(o.apiVersion)).map((o) => `${o.apiVersion} ${describeObject(o)}`),
      [],
      'objects of a custom resource in the base',
    );
  });

  test('the prometheus-operator component holds the ServiceMonitor and PrometheusRule, and the example overlay uses it', (t) => {
    const dir = path.join('deploy', 'components', 'prometheus-operator');
    const kustomization = YAML.parse(readFileSync(path.join(repoRoot, dir, 'kustomization.yaml'), 'utf8'));
    t.is(kustomization.kind, 'Component');
    t.deepEqual(
      render(dir)
        .map((o) => o.kind)
        .sort(),
      ['PrometheusRule', 'ServiceMonitor'],
    );
    const example = render(path.join('deploy', 'overlays', 'example'));
    t.deepEqual(
      example
        .filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/'))
        .map((o) => o.kind)
        .sort(),
      ['PrometheusRule', 'ServiceMonitor'],
    );
  });

  test('the base image is a placeholder, and every overlay sets a real one', (t) => {
    const image = (objects: K8sObject[]) => gatewayContainer(objects.find((o) => o.kind === 'Deployment')!).image as string;
    t.is(image(render(path.join('deploy', 'base'))), PLACEHOLDER_IMAGE);
    for (const overlay of overlayDirs()) {
      const set = image(render(overlay));
      t.not(set, PLACEHOLDER_IMAGE, `${overlay} does not set the image`);
      t.false(set.endsWith(':set-by-overlay'), `${overlay}: ${set} keeps the placeholder tag`);
      t.regex(set, /^[a-z0-9.-]+(:\d+)?\/[^:@]+[:@]/, `${overlay}: ${set} names a registry and a tag or digest`);
    }
  });

  test('the strict check and the schema check can fail', async (t) => {
    const bad: K8sObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bad' },
      spec: {
        replica: 1, // typo: unknown field
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } },
      },
    };
    t.regex(strictFieldProblems([bad]).join('\n'), /replica/);
    const wrongType: K8sObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'bad' },
      spec: { ports: [{ port: '830' }] },
    };
    t.regex((await schemaProblems(wrongType)).join('\n'), /port/);
    const rule: K8sObject = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'bad' },
      spec: { groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'up', for: '5 minutes' }] }] },
    };
    t.regex((await schemaProblems(rule)).join('\n'), /for/);
    t.regex((await schemaProblems({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).join('\n'), /no schema/);
  });
}
