// A small Dockerfile and .dockerignore reader, enough to check the image's contract
// without a Docker engine.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './k8s.js';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  let buf = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*#/.test(line)) return; // comment (or parser directive)
    if (buf !== '' && /^\s*#/.test(line)) return; // comment inside a continuation
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(buf);
    if (m) instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.args)!;
      stages.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op === 'ARG') {
        const [name, value = ''] = ins.args.split('=');
        globalArgs.set(name!.trim(), value.trim());
      }
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export function readDockerfile(): Dockerfile {
  return parseDockerfile(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'));
}

/** The base image of a stage with global ARG defaults substituted. */
export function resolvedFrom(df: Dockerfile, stage: Stage): string {
  return stage.from.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => df.globalArgs.get(name) ?? '');
}

/** The final stage's USER as numbers (undefined if missing or by name). */
export function dockerfileUser(df: Dockerfile): { uid: number; gid?: number } | undefined {
  const users = df.stages.at(-1)?.instructions.filter((i) => i.op === 'USER') ?? [];
  const last = users.at(-1);
  if (!last) return undefined;
  const m = /^(\d+)(?::(\d+))?$/.exec(last.args);
  return m ? { uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : undefined } : undefined;
}

/** Docker's JSON or shell form of CMD/ENTRYPOINT/HEALTHCHECK CMD as an argv. */
export function execForm(args: string): string[] {
  const t = args.trim();
  if (t.startsWith('[')) return JSON.parse(t) as string[];
  return ['/bin/sh', '-c', t];
}

// --- .dockerignore ------------------------------------------------------------------------

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
        if (pattern[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern also excludes everything below a matched directory.
  return new RegExp(`^${re}(?:/.*)?$`);
}

export interface DockerIgnore {
  /** whether a context-relative path is sent to the builder */
  included(relPath: string): boolean;
  patterns: string[];
}

/** Docker's rules: patterns in order, the last match wins, `!` re-includes. */
export function readDockerIgnore(): DockerIgnore | undefined {
  const file = path.join(repoRoot, '.dockerignore');
  if (!existsSync(file)) return undefined;
  const patterns = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const rules = patterns.map((pat) => {
    const negate = pat.startsWith('!');
    const body = path.posix.normalize(pat.replace(/^!/, '').replace(/^\/+/, '')).replace(/\/$/, '');
    return { negate, re: globToRegExp(body) };
  });
  return {
    patterns,
    included(relPath: string) {
      const p = path.posix
        .normalize(relPath)
        .replace(/^\.\/?/, '')
        .replace(/\/$/, '');
      let excluded = false;
      for (const rule of rules) if (rule.re.test(p)) excluded = !rule.negate;
      return !excluded;
    },
  };
}
