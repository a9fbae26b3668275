// Decides whether real-peer tests can run here. On a developer machine without the peers
// the tests are skipped with a loud message; under CI=true a missing peer fails the run,
// so a CI image that lost a package can never turn the e2e suite silently green.
import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { ExecutionContext, TestFn } from 'ava';
import { BIN, TEST_USER } from './constants.js';
import { isRoot } from './util.js';

const INSTALL_HINT = 'run: bash test/peers/install.sh';

let cachedMissing: string[] | undefined;

/** Names of the real peers that are not usable on this machine (empty when all are). */
export function missingPeers(): string[] {
  if (cachedMissing) return cachedMissing;
  const missing: string[] = [];
  // PEERS_PRETEND_MISSING=socat,ssh: exercise the skip / fail-in-CI path without uninstalling.
  const pretend = new Set((process.env.PEERS_PRETEND_MISSING ?? '').split(',').filter(Boolean));
  for (const [name, path] of Object.entries(BIN)) {
    try {
      if (pretend.has(name)) throw new Error('pretend');
      accessSync(path, constants.X_OK);
    } catch {
      missing.push(`${name} (${path})`);
    }
  }
  if (!missing.some((m) => m.startsWith('python3'))) {
    const r = spawnSync(BIN.python3, ['-c', 'import ncclient'], { stdio: 'ignore', timeout: 20_000 });
    if (r.status !== 0) missing.push('python3-ncclient (import ncclient with /usr/bin/python3)');
  }
  cachedMissing = missing;
  return missing;
}

function isCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

function complain(what: string): string {
  const msg = `REAL PEERS MISSING: ${what}; ${INSTALL_HINT}`;
  if (isCI()) throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  console.error(`\n*** ${msg} -- SKIPPING real-peer tests ***\n`);
  return msg;
}

type AnyFn = (...args: unknown[]) => unknown;

/** A callable forwarding to `target`, carrying `props` (ava's chainable API shape). */
function fwd(target: unknown, props: Record<string, unknown> = {}): unknown {
  const f = (...args: unknown[]): unknown => (target as AnyFn)(...args);
  return Object.assign(f, props);
}

/** A TestFn whose tests and hooks are all registered as skipped. */
export function skippingTestFn<C>(test: TestFn<C>): TestFn<C> {
  const hook = (h: { skip: unknown; always?: { skip: unknown } }): unknown =>
    fwd(h.skip, {
      skip: h.skip,
      ...(h.always ? { always: fwd(h.always.skip, { skip: h.always.skip }) } : {}),
    });
  return fwd(test.skip, {
    skip: test.skip,
    todo: test.todo,
    only: test.skip,
    failing: fwd(test.failing.skip, { skip: test.failing.skip }),
    serial: fwd(test.serial.skip, {
      skip: test.serial.skip,
      todo: test.todo,
      failing: fwd(test.serial.failing.skip, { skip: test.serial.failing.skip }),
      before: hook(test.before),
      after: hook(test.after),
      beforeEach: hook(test.beforeEach),
      afterEach: hook(test.afterEach),
    }),
    before: hook(test.before),
    after: hook(test.after),
    beforeEach: hook(test.beforeEach),
    afterEach: hook(test.afterEach),
    macro: test.macro,
    meta: test.meta,
  }) as TestFn<C>;
}

/**
 * Guard for real-peer tests.
 * - `const ptest = requirePeers(test)` at module level: returns `test` when every peer is
 *   present, else a TestFn that registers every test and hook as skipped.
 * - `if (!requirePeers(t)) return;` inside a test: true when the peers are present, else
 *   logs and passes the test.
 * Under CI=true a missing peer throws instead (the run fails loudly).
 */
export function requirePeers<C>(test: TestFn<C>): TestFn<C>;
export function requirePeers(t: ExecutionContext<unknown>): boolean;
export function requirePeers<C>(arg: TestFn<C> | ExecutionContext<unknown>): TestFn<C> | boolean {
  const missing = missingPeers();
  if (typeof arg === 'function') {
    if (missing.length === 0) return arg;
    complain(missing.join(', '));
    return skippingTestFn(arg);
  }
  if (missing.length === 0) return true;
  const msg = complain(missing.join(', '));
  arg.log(msg);
  arg.pass();
  return false;
}

/**
 * Why a device cannot offer password authentication here, or undefined when it can.
 * sshd only checks passwords (against /etc/shadow) when it runs as root, and the account
 * comes from install.sh.
 */
export function passwordAuthUnavailable(): string | undefined {
  if (!isRoot) return 'device password auth needs the harness to run as root (sshd reads /etc/shadow)';
  const r = spawnSync('id', [TEST_USER], { stdio: 'ignore' });
  if (r.status !== 0) return `device password auth needs the user ${TEST_USER} (${INSTALL_HINT})`;
  return undefined;
}

/**
 * Like requirePeers(t), for tests that log in to a device with a password. When not root the
 * test is skipped even in CI (it cannot work there); a missing account fails under CI.
 */
export function requireDevicePassword(t: ExecutionContext<unknown>): boolean {
  if (!requirePeers(t)) return false;
  const why = passwordAuthUnavailable();
  if (!why) return true;
  if (isRoot) complain(why); // throws under CI
  console.error(`\n*** SKIPPING: ${why} ***\n`);
  t.log(`skipped: ${why}`);
  t.pass();
  return false;
}
