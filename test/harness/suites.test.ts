// The suite rule (suites.ts) keeps every test that starts a real peer out of `test:unit`,
// including files added later in folders that are otherwise unit tests.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { repoRoot } from '../e2e/peers/util.js';
import { avaGlobs, suiteOf } from './suites.js';

/** What a test file uses when it drives a real peer (process or client) from the harness. */
const REAL_PEER =
  /\b(requirePeers|requireLibnetconf2|requireDevicePassword|ensureNetconfd|CallHomeDevice|TlsCallHomeDevice|Lnc2Device|runNcclient|runLnc2Manager|runOpenSshNetconf|startRedis|startPrometheus|startHaproxy|BIN\.\w+)\b/;

function testSources(dir: string): string[] {
  return readdirSync(path.join(repoRoot(), dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

test('every test file that drives a real peer is outside the unit suite', (t) => {
  const files = testSources('test').filter((f) => f !== 'test/harness/suites.test.ts'); // its own pattern
  t.true(files.length > 50);
  const misplaced = files.filter((f) => suiteOf(f) === 'unit' && REAL_PEER.test(readFileSync(path.join(repoRoot(), f), 'utf8')));
  t.deepEqual(misplaced, [], 'rename to *.e2e.test.ts or move under test/e2e/ (test/README.md)');
});

test('the suites split the test files without overlap, and the ava globs select the same files', (t) => {
  const files = testSources('test');
  const byGlobs = (suite: Parameters<typeof avaGlobs>[0]) => {
    const globs = avaGlobs(suite);
    const yes = picomatch(globs.filter((g) => !g.startsWith('!')));
    const no = picomatch(globs.filter((g) => g.startsWith('!')).map((g) => g.slice(1)));
    return files.filter((f) => {
      const js = 'dist/' + f.replace(/\.ts$/, '.js');
      return yes(js) && !no(js);
    });
  };
  for (const suite of ['unit', 'e2e', 'deploy'] as const) {
    t.deepEqual(
      byGlobs(suite),
      files.filter((f) => suiteOf(f) === suite),
      suite,
    );
  }
  t.is(byGlobs('all').length, files.length);
  t.is(suiteOf('test/e2e/gateway.test.ts'), 'e2e');
  t.is(suiteOf('test/cluster/failover.test.ts'), 'e2e');
  t.is(suiteOf('test/lifecycle/drain.e2e.test.ts'), 'e2e');
  t.is(suiteOf('test/deploy/promtool.test.ts'), 'deploy');
  t.is(suiteOf('test/netconf/framing.test.ts'), 'unit');
});
