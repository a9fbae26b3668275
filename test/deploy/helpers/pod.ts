// What the gateway container will see once Kubernetes runs it: its environment, its
// --config files and the files behind each mount, resolved from the rendered objects.
// Used to cross-check the manifests and to start a real gateway the way the pod would.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gatewayContainer, type K8sObject } from './k8s.js';

export interface MountedFile {
  /** the path the container asked for */
  path: string;
  mountPath: string;
  volume: string;
  source: 'configMap' | 'secret' | 'persistentVolumeClaim' | 'emptyDir' | 'other';
  /** ConfigMap / Secret / PVC name */
  sourceName?: string;
  /** key inside the ConfigMap / Secret */
  key?: string;
  /** whether that object was rendered (false: created out of band) */
  rendered: boolean;
  /** file content, when the object and the key are rendered */
  content?: string;
  readOnly: boolean;
}

/** Downward-API values of a plausible pod, for checking what the container would see. */
export const SAMPLE_POD_FIELDS: Record<string, string> = {
  'metadata.name': 'callhome-gateway-5d8f7c9b6-x7k2p',
  'metadata.namespace': 'callhome',
  'status.podIP': '10.244.1.17',
  'spec.nodeName': 'node-1',
};

export class PodView {
  readonly deployment: K8sObject;
  readonly podSpec: Record<string, any>;
  readonly container: Record<string, any>;
  readonly objects: K8sObject[];

  constructor(objects: K8sObject[], deployment: K8sObject) {
    this.objects = objects;
    this.deployment = deployment;
    this.podSpec = (deployment as any).spec.template.spec;
    this.container = gatewayContainer(deployment);
  }

  get labels(): Record<string, string> {
    return (this.deployment as any).spec.template.metadata?.labels ?? {};
  }

  find(kind: string, name: string): K8sObject | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name);
  }

  /**
   * The container's environment as the kubelet builds it: literal values, downward-API
   * fields (`valueFrom.fieldRef`) from `fields` (sample pod values by default), and
   * `$(NAME)` references expanded from variables defined earlier in the list, as
   * Kubernetes does (a later or unknown name stays as written). Other valueFrom sources
   * (Secret, ConfigMap, resources) are listed apart in `fromRefs`.
   */
  env(fields: Record<string, string> = SAMPLE_POD_FIELDS): { values: Record<string, string>; fromRefs: string[]; fieldRefs: string[] } {
    const values: Record<string, string> = {};
    const fromRefs: string[] = [];
    const fieldRefs: string[] = [];
    const expand = (text: string) => text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => values[name] ?? ref);
    type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
    for (const e of (this.container.env ?? []) as EnvVar[]) {
      const field = e.valueFrom?.fieldRef?.fieldPath;
      if (field !== undefined && fields[field] !== undefined) {
        values[e.name] = fields[field]!;
        fieldRefs.push(e.name);
      } else if (e.valueFrom !== undefined) fromRefs.push(e.name);
      else values[e.name] = expand(e.value ?? '');
    }
    return { values, fromRefs, fieldRefs };
  }

  /** The --config FILE arguments (both `--config F` and `--config=F`). */
  configArgs(): string[] {
    const args = [...((this.container.command ?? []) as string[]), ...((this.container.args ?? []) as string[])];
    const files: string[] = [];
    args.forEach((a, i) => {
      if (a === '--config' && args[i + 1]) files.push(args[i + 1]!);
      else if (a.startsWith('--config=')) files.push(a.slice('--config='.length));
    });
    return files;
  }

  /** The mount that holds `file` (longest mountPath prefix), or undefined. */
  resolve(file: string): MountedFile | undefined {
    const mounts = ((this.container.volumeMounts ?? []) as Record<string, any>[])
      .filter((m) => file === m.mountPath || file.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length);
    const mount = mounts[0];
    if (!mount) return undefined;
    const volume = ((this.podSpec.volumes ?? []) as Record<string, any>[]).find((v) => v.name === mount.name);
    const base: MountedFile = {
      path: file,
      mountPath: mount.mountPath,
      volume: mount.name,
      source: 'other',
      rendered: false,
      readOnly: mount.readOnly === true,
    };
    if (!volume) return base;
    let rel = path.posix.relative(mount.mountPath, file);
    if (mount.subPath) rel = path.posix.join(mount.subPath, rel);
    const keyFor = (items: { key: string; path: string }[] | undefined) => (items ? items.find((it) => it.path === rel)?.key : rel.includes('/') ? undefined : rel);
    if (volume.configMap) {
      const cm = this.find('ConfigMap', volume.configMap.name);
      const key = keyFor(volume.configMap.items);
      return {
        ...base,
        source: 'configMap',
        sourceName: volume.configMap.name,
        key,
        rendered: !!cm,
        content: key !== undefined ? (cm as any)?.data?.[key] : undefined,
      };
    }
    if (volume.secret) {
      const secret = this.find('Secret', volume.secret.secretName);
      const key = keyFor(volume.secret.items);
      const data = (secret as any)?.data?.[key ?? ''];
      const stringData = (secret as any)?.stringData?.[key ?? ''];
      return {
        ...base,
        source: 'secret',
        sourceName: volume.secret.secretName,
        key,
        rendered: !!secret,
        content: stringData ?? (data !== undefined ? Buffer.from(data, 'base64').toString('utf8') : undefined),
      };
    }
    if (volume.persistentVolumeClaim) {
      const claim = volume.persistentVolumeClaim.claimName;
      return { ...base, source: 'persistentVolumeClaim', sourceName: claim, rendered: !!this.find('PersistentVolumeClaim', claim) };
    }
    if (volume.emptyDir) return { ...base, source: 'emptyDir', rendered: true };
    return base;
  }

  /** Container ports by name and by number. */
  ports(): { name?: string; containerPort: number; protocol?: string }[] {
    return (this.container.ports ?? []) as { name?: string; containerPort: number; protocol?: string }[];
  }

  /** A Service/probe/NetworkPolicy port reference (name or number) → container port number. */
  portNumber(ref: string | number): number | undefined {
    if (typeof ref === 'number') return this.ports().some((p) => p.containerPort === ref) ? ref : undefined;
    if (/^\d+$/.test(ref)) return this.portNumber(Number(ref));
    return this.ports().find((p) => p.name === ref)?.containerPort;
  }

  /** Whether a label selector (matchLabels or a Service's plain map) selects this pod. */
  selects(selector: Record<string, string> | undefined): boolean {
    if (!selector || Object.keys(selector).length === 0) return false;
    return Object.entries(selector).every(([k, v]) => this.labels[k] === v);
  }

  /**
   * Writes the pod's view of its mounted files under `root` (each mountPath becomes
   * root + mountPath; writable mounts become empty directories) and returns a function
   * that rewrites container paths to those host paths. Container paths inside ConfigMap
   * files (config, inventory) are rewritten the same way. Lets a test run the real gateway
   * with exactly the config, inventory and secrets the manifests would give it.
   */
  materialize(root = mkdtempSync(path.join(os.tmpdir(), 'chgw-pod-'))): { root: string; hostPath: (p: string) => string } {
    const mounts = (this.container.volumeMounts ?? []) as Record<string, any>[];
    const prefixes = mounts.map((m) => String(m.mountPath)).sort((a, b) => b.length - a.length);
    const hostPath = (p: string) => {
      const prefix = prefixes.find((m) => p === m || p.startsWith(`${m}/`));
      return prefix ? path.join(root, p) : p;
    };
    // One pass, longest mount first, so a rewritten path is never rewritten again.
    const escape = (m: string) => m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const mountRe = new RegExp(`(?<![\\w./-])(${prefixes.map(escape).join('|')})(?=/)`, 'g');
    const rewrite = (text: string) => (prefixes.length ? text.replace(mountRe, (m) => hostPath(m)) : text);
    for (const mount of mounts) {
      const dir = path.join(root, mount.mountPath);
      mkdirSync(dir, { recursive: true });
      const volume = ((this.podSpec.volumes ?? []) as Record<string, any>[]).find((v) => v.name === mount.name);
      const source = volume?.configMap ? this.find('ConfigMap', volume.configMap.name) : volume?.secret ? this.find('Secret', volume.secret.secretName) : undefined;
      if (!source) continue;
      const entries: [string, string][] = [
        ...Object.entries(((source as any).data ?? {}) as Record<string, string>).map(([k, v]): [string, string] => [
          k,
          source.kind === 'Secret' ? Buffer.from(v, 'base64').toString('utf8') : v,
        ]),
        ...Object.entries(((source as any).stringData ?? {}) as Record<string, string>),
      ];
      const items = (volume!.configMap ?? volume!.secret).items as { key: string; path: string }[] | undefined;
      for (const [key, value] of entries) {
        const rel = items ? items.find((it) => it.key === key)?.path : key;
        if (!rel) continue;
        mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        writeFileSync(path.join(dir, rel), source.kind === 'ConfigMap' ? rewrite(value) : value, { mode: 0o600 });
      }
    }
    return { root, hostPath };
  }
}

/** The Deployments in a rendered tree, each with its pod view. */
export function podViews(objects: K8sObject[]): PodView[] {
  return objects.filter((o) => o.kind === 'Deployment').map((d) => new PodView(objects, d));
}
