// Every relative link in the README and docs/ leads somewhere: the file exists and, for a
// link with an anchor, the heading does. Moving a section between documents cannot leave
// a dead link behind.
import test from 'ava';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { anchors, read, relativeLinks, repoRoot } from './markdown.js';

/** Documents linked before they exist (none now). */
const WRITTEN_WITH_THEIR_FEATURE = new Set<string>();

const documents = [
  'README.md',
  'deploy/README.md',
  ...readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

test('the documents to check are there', (t) => {
  for (const doc of ['README.md', 'docs/CONFIGURATION.md', 'docs/SECURITY.md', 'docs/TLS.md', 'docs/OPERATIONS.md', 'docs/ARCHITECTURE.md', 'docs/CLUSTER.md']) {
    t.true(documents.includes(doc), doc);
  }
});

for (const doc of documents) {
  test(`${doc}: every relative link and anchor resolves`, (t) => {
    const problems: string[] = [];
    const links = relativeLinks(read(doc));
    for (const { target, n } of links) {
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? doc : path.posix.normalize(path.posix.join(path.posix.dirname(doc), file));
      const absolute = path.join(repoRoot, resolved);
      if (!existsSync(absolute)) {
        if (!WRITTEN_WITH_THEIR_FEATURE.has(resolved)) problems.push(`${doc}:${n}: ${target}: no such file ${resolved}`);
        continue;
      }
      if (anchor === undefined) continue;
      if (statSync(absolute).isDirectory() || !resolved.endsWith('.md')) {
        problems.push(`${doc}:${n}: ${target}: an anchor into something that is not a Markdown document`);
      } else if (!anchors(read(resolved)).has(anchor)) {
        problems.push(`${doc}:${n}: ${target}: ${resolved} has no heading with the anchor #${anchor}`);
      }
    }
    t.deepEqual(problems, []);
    if (doc === 'README.md') t.true(links.length >= 10, 'the README links the documents');
  });
}
