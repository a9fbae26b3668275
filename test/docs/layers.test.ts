// The dependency direction drawn in docs/ARCHITECTURE.md holds in src/: no module imports
// one of a higher line of the drawing, apart from the exceptions the document names, and
// the two edges (call home, northbound) never import each other. The drawing is the source:
// moving a folder means moving it there.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { read, repoRoot, section } from './markdown.js';

/** Parts drawn beside the stack rather than in it (ARCHITECTURE.md says what they import). */
const BESIDE = ['simulator/', 'cluster/'];
/** Imports that point up, each named in ARCHITECTURE.md. */
const EXCEPTIONS = [
  ['config/formats.ts', 'limits/startups.ts'],
  ['metrics.ts', 'netconf/direction.ts'],
  ['inventory/inventory.ts', 'device/session-mode.ts'],
  ['limits/device-ceiling.ts', 'device/registry.ts'],
];

/** The drawing: unit (`device/`, `device/held/`, `config.ts`) → its line, the top line highest. */
function layers(): Map<string, number> {
  const block = /```\n([\s\S]*?)```/.exec(section(read('docs/ARCHITECTURE.md'), 'Dependency direction') ?? '')?.[1] ?? '';
  const lines = block.split('\n').filter((l) => l.trim() !== '');
  const out = new Map<string, number>();
  lines.forEach((line, i) => {
    for (const token of line.split(/[\s,]+/)) if (/^[\w.-]+(?:\/[\w.-]+)*\/$|^[\w.-]+\.ts$/.test(token)) out.set(token, lines.length - i);
  });
  return out;
}

function sources(dir = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(repoRoot, 'src', dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** The most specific drawn unit a file of src/ belongs to. */
function unitOf(file: string, drawn: Set<string>): string | undefined {
  if (drawn.has(file)) return file;
  const parts = file.split('/').slice(0, -1);
  for (let n = parts.length; n > 0; n--) {
    const unit = `${parts.slice(0, n).join('/')}/`;
    if (drawn.has(unit) || BESIDE.includes(unit)) return unit;
  }
  return undefined;
}

const stack = layers();
const drawn = new Set(stack.keys());
const files = sources();

test('every part of src/ is in the drawing (or beside it)', (t) => {
  t.true(stack.size >= 20, [...stack.keys()].join(' '));
  t.deepEqual(
    files.filter((f) => unitOf(f, drawn) === undefined),
    [],
    'files of src/ in no unit of the dependency drawing',
  );
});

test('no import points up the drawing except the named ones, and the edges never import each other', (t) => {
  const problems: string[] = [];
  let imports = 0;
  for (const file of files) {
    const from = unitOf(file, drawn)!;
    const text = readFileSync(path.join(repoRoot, 'src', file), 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/g)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts');
      const to = unitOf(target, drawn);
      if (!to || to === from || BESIDE.includes(from) || BESIDE.includes(to)) continue;
      imports++;
      if (EXCEPTIONS.some(([a, b]) => a === file && b === target)) continue;
      if (stack.get(to)! > stack.get(from)!) problems.push(`${file} imports ${target}: ${to} is drawn above ${from}`);
      if (new Set([from, to]).size === 2 && [from, to].every((u) => u === 'callhome/' || u === 'northbound/'))
        problems.push(`${file} imports ${target}: the edges never import each other`);
    }
  }
  t.true(imports >= 100, `only ${imports} imports between units seen`);
  t.deepEqual(problems, []);
});
