// Which test files belong to which suite, by path alone (test/README.md states the rule):
// e2e = real peers (sshd, netconfd, ncclient, libnetconf2, redis-server, prometheus,
// haproxy), deploy = the deploy/ checks, unit = everything else (fast, no peers).
import picomatch from 'picomatch';

export type Suite = 'unit' | 'e2e' | 'deploy';

/** Paths relative to the repository root, of the TypeScript sources (test/...). */
export const SUITE_PATTERNS: Record<Exclude<Suite, 'unit'>, string[]> = {
  e2e: ['test/e2e/**', 'test/cluster/**', 'test/**/*.e2e.test.ts'],
  deploy: ['test/deploy/**'],
};

const matchers = {
  e2e: picomatch(SUITE_PATTERNS.e2e),
  deploy: picomatch(SUITE_PATTERNS.deploy),
};

/** The suite of one test source file (test/...ts). deploy wins over e2e. */
export function suiteOf(file: string): Suite {
  if (matchers.deploy(file)) return 'deploy';
  if (matchers.e2e(file)) return 'e2e';
  return 'unit';
}

/** ava file globs (compiled, under dist/) selecting one suite, or every test for 'all'. */
export function avaGlobs(suite: Suite | 'all'): string[] {
  const js = (p: string): string => 'dist/' + p.replace(/\.ts$/, '.js');
  const all = 'dist/test/**/*.test.js';
  const not = (ps: string[]): string[] => ps.map((p) => '!' + js(p));
  switch (suite) {
    case 'all':
      return [all];
    case 'deploy':
      return SUITE_PATTERNS.deploy.map((p) => js(p.endsWith('**') ? p + '/*.test.ts' : p));
    case 'e2e':
      return [...SUITE_PATTERNS.e2e.map((p) => js(p.endsWith('**') ? p + '/*.test.ts' : p)), ...not(SUITE_PATTERNS.deploy)];
    case 'unit':
      return [all, ...not(SUITE_PATTERNS.e2e), ...not(SUITE_PATTERNS.deploy)];
  }
}
