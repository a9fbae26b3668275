// docs/ARCHITECTURE.md against the tree: the module map has a row for every folder of src/,
// and every folder, file and function the document names exists, so the map and the path
// of a message cannot drift from the code unnoticed.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { read, repoRoot, section } from './markdown.js';

const doc = read('docs/ARCHITECTURE.md');

/** Every folder under src/, as `src/a/b/`. */
function srcFolders(dir = 'src'): string[] {
  const out = [`${dir}/`];
  for (const e of readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...srcFolders(`${dir}/${e.name}`));
  }
  return out;
}

/** The rows of a Markdown table in `text` whose first cell is a backticked `src/` path: folder → row. */
function mapRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\|\s*`(src\/[^`]*)`\s*\|/.exec(line);
    if (m) rows.set(m[1]!, line);
  }
  return rows;
}

const codeSpans = (text: string) => [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);

/** A code span that names a file or folder: `x.ts`, `a/b.ts`, `src/x/`, `test/y.test.ts`, `.ci/run`. */
const looksLikePath = (s: string) => /^[\w.-]+(?:\/[\w.-]+)*\/?$/.test(s) && (s.endsWith('.ts') || s.includes('/')) && !s.startsWith('dist/');

/** Resolves a named path: from the repository root for top-level folders, else from `context` and its parents up to src/. */
function resolves(name: string, context: string): boolean {
  const top = name.split('/')[0]!;
  if (['src', 'test', 'docs', 'deploy', 'bench', '.ci', 'patches', 'config'].includes(top)) return existsSync(path.join(repoRoot, name));
  for (let dir = context.replace(/\/$/, ''); dir.startsWith('src'); dir = path.posix.dirname(dir)) {
    if (existsSync(path.join(repoRoot, dir, name))) return true;
  }
  return false;
}

const map = section(doc, 'Module map');

test('the module map has a row for every folder of src/, and each folder it names exists', (t) => {
  t.truthy(map, 'docs/ARCHITECTURE.md has a "## Module map" section');
  const rows = mapRows(map ?? '');
  const folders = srcFolders();
  t.true(folders.length >= 15, folders.join(' '));
  t.deepEqual(
    folders.filter((f) => !rows.has(f)),
    [],
    'folders of src/ missing from the module map',
  );
  t.deepEqual(
    [...rows.keys()].filter((f) => !f.endsWith('/') || !existsSync(path.join(repoRoot, f)) || !statSync(path.join(repoRoot, f)).isDirectory()),
    [],
    'module map rows that are not folders of src/',
  );
});

test('every file the module map names exists in its folder', (t) => {
  const missing: string[] = [];
  let named = 0;
  for (const [folder, row] of mapRows(map ?? '')) {
    for (const name of codeSpans(row.split('|').slice(2).join('|')).filter(looksLikePath)) {
      named++;
      if (!resolves(name, folder)) missing.push(`${folder}: ${name}`);
    }
  }
  t.true(named >= 60, `only ${named} files named: did the table change shape?`);
  t.deepEqual(missing, []);
});

test('every path the document names exists', (t) => {
  const missing: string[] = [];
  for (const line of doc.split('\n')) {
    // Names in a row are relative to the row's first `src/` path (its folder), else to src/.
    const spans = codeSpans(line);
    const context = spans.find((s) => s.startsWith('src/')) ?? 'src/';
    for (const name of spans.filter(looksLikePath)) if (!resolves(name, context.endsWith('/') ? context : path.posix.dirname(context))) missing.push(name);
  }
  t.deepEqual(missing, []);
});

test('the path of a message names functions that exist in the files it names', (t) => {
  const steps = section(doc, 'The path of one NETCONF message');
  t.truthy(steps, 'docs/ARCHITECTURE.md has a "## The path of one NETCONF message" section');
  const problems: string[] = [];
  let checked = 0;
  for (const line of (steps ?? '').split('\n')) {
    const code = /^\|\s*\d+\s*\|([^|]*)\|/.exec(line)?.[1];
    if (!code) continue;
    const [file, ...names] = codeSpans(code);
    if (!file?.startsWith('src/') || !existsSync(path.join(repoRoot, file))) {
      problems.push(`a step without an existing src/ file first: ${line.slice(0, 80)}`);
      continue;
    }
    const source = readFileSync(path.join(repoRoot, file), 'utf8');
    for (const name of names) {
      const [owner, member] = name.includes('.') ? name.split('.') : [undefined, name];
      checked++;
      if (owner && !new RegExp(`\\bclass ${owner}\\b`).test(source)) problems.push(`${file}: no class ${owner}`);
      if (!new RegExp(`\\b${member}\\s*[(<]|function ${member}\\b|class ${member}\\b`).test(source)) problems.push(`${file}: no ${name}`);
    }
  }
  t.true(checked >= 20, `only ${checked} functions checked: did the tables change shape?`);
  t.deepEqual(problems, []);
});
