// Rendering and validating the kustomize trees under deploy/ offline.
// Validation is two-layered, both from the `kubernetes-models` packages (no downloads):
//  1. each object's compiled JSON-schema validator (types, required fields, enums, formats);
//  2. a TypeScript type check of every object against the same package's declarations,
//     whose excess-property check rejects unknown fields the way `kubectl --validate=strict`
//     does (the JSON schemas allow unknown fields, so a typo like `replica:` passes 1).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import YAML from 'yaml';

/** The repository root (this file runs from dist/test/deploy/helpers/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Renderer {
  /** human-readable, e.g. "/usr/bin/kubectl kustomize" */
  describe: string;
  render(dir: string): string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** kubectl (or a standalone kustomize), from $KUBECTL, $PATH or the usual places. */
export function findRenderer(): Renderer | undefined {
  const kubectl = process.env.KUBECTL ?? onPath('kubectl') ?? ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
  if (kubectl) {
    return {
      describe: `${kubectl} kustomize`,
      render: (dir) => execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    };
  }
  const kustomize = process.env.KUSTOMIZE ?? onPath('kustomize');
  if (kustomize) {
    return {
      describe: `${kustomize} build`,
      render: (dir) => execFileSync(kustomize, ['build', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    };
  }
  return undefined;
}

/** Every kustomization under deploy/: the base, each overlay, and any other tree. */
export function kustomizeDirs(): string[] {
  const deploy = path.join(repoRoot, 'deploy');
  const dirs: string[] = [];
  const walk = (dir: string) => {
    if (['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((f) => existsSync(path.join(dir, f)))) {
      dirs.push(path.relative(repoRoot, dir));
    }
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(dir, entry.name));
    }
  };
  walk(deploy);
  return dirs.sort();
}

/** The overlays (deploy/overlays/*), each of which is a complete deployment. */
export function overlayDirs(): string[] {
  return kustomizeDirs().filter((d) => d.split(path.sep).slice(0, 2).join('/') === 'deploy/overlays');
}

export function parseObjects(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
    const value = doc.toJSON() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

export function describeObject(o: K8sObject): string {
  return `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;
}

/** Where the model of an apiVersion/kind lives: a module specifier and the type's name. */
export function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg = group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  return group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
}

/** Layer 1: the JSON-schema validator shipped with the model. Returns problems, [] if valid. */
export async function schemaProblems(o: K8sObject): Promise<string[]> {
  const spec = modelModule(o.apiVersion, o.kind);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch {
    return [`${describeObject(o)}: no schema for ${o.apiVersion} ${o.kind} (${spec}); add its model package or drop the object`];
  }
  const Model = mod[o.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return [`${describeObject(o)}: ${spec} exports no ${o.kind}`];
  try {
    new Model(o).validate();
    return [];
  } catch (err) {
    return [`${describeObject(o)}: ${(err as Error).message}`];
  }
}

/**
 * Layer 2: type-check every object against the model's declaration. Unknown fields,
 * wrong types and missing required fields come back as one message per problem found
 * (TypeScript reports the first problem inside each object).
 */
export function strictFieldProblems(objects: K8sObject[]): string[] {
  const file = path.join(repoRoot, '__deploy_strict_check__.ts');
  const lines: string[] = [];
  const imports = new Map<string, string>();
  const lineOf: K8sObject[] = [];
  objects.forEach((o, i) => {
    const spec = modelModule(o.apiVersion, o.kind);
    let alias = imports.get(spec);
    if (!alias) {
      alias = `T${imports.size}`;
      imports.set(spec, alias);
    }
    lineOf[i] = o;
    lines.push(`export const o${i}: ${alias} = ${JSON.stringify(o)};`);
  });
  const header = [...imports].map(([spec, alias]) => {
    const kind = spec.split('/').pop()!;
    return `import type { I${kind} as ${alias} } from '${spec}';`;
  });
  const source = [...header, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) => (name === file ? ts.createSourceFile(name, source, languageVersion) : getSourceFile(name, languageVersion, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const problems: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file?.fileName === file && d.start !== undefined) {
      const line = d.file.getLineAndCharacterOfPosition(d.start).line - header.length;
      const o = lineOf[line];
      const at = o ? describeObject(o) : `line ${line}`;
      // Show the JSON around the problem so the field is easy to find.
      const text = d.file.text;
      const excerpt = text.slice(Math.max(d.start - 40, text.lastIndexOf('\n', d.start) + 1), d.start + 60);
      problems.push(`${at}: ${message} (near …${excerpt}…)`);
    } else {
      problems.push(message);
    }
  }
  return problems;
}

/** A Deployment's first container named "gateway" (or its only container). */
export function gatewayContainer(deployment: K8sObject): Record<string, any> {
  const containers = (deployment as any).spec.template.spec.containers as Record<string, any>[];
  return containers.find((c) => c.name === 'gateway') ?? containers[0]!;
}
