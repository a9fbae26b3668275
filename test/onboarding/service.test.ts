// The onboarding service on its own: its answers are domain results (no HTTP), and the
// HTTP side maps each kind of refusal to one status.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { Inventory } from '../../src/inventory/inventory.js';
import { createLogger } from '../../src/log.js';
import { Onboarding, type ApproveResult, type OnboardingProblem } from '../../src/onboarding/service.js';
import { onboardingAnswers } from '../../src/http/onboarding.js';

const fp = (c: string) => 'SHA256:' + c.repeat(43);

function setUp() {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-onb-'));
  const file = path.join(dir, 'devices.yaml');
  writeFileSync(file, `devices:\n  - id: file-1\n    ssh: { hostKeys: ["${fp('E')}"] }\n    credentials: { username: x, password: y }\n    port: 10830\n`);
  const config = loadConfig([], { CHGW_STATEDIR: path.join(dir, 'state'), CHGW_INVENTORY_FILE: file });
  let inventory = Inventory.empty();
  let changes = 0;
  const onboarding = new Onboarding({
    config,
    logger: createLogger('silent'),
    inventory: () => inventory,
    reservedPort: (port) => (port === 4334 ? 'the SSH call-home port of this gateway' : undefined),
    devicePorts: () => new Map([['live-1', 10900]]),
    changed: () => {
      changes++;
      inventory = onboarding.loadInventory();
    },
  });
  inventory = onboarding.loadInventory();
  return { onboarding, changes: () => changes, inventory: () => inventory };
}

const creds = { username: 'u', password: 'p' };

function refused(t: ExecutionContext, r: ApproveResult, problem: OnboardingProblem, message: RegExp) {
  t.false(r.ok);
  if (!r.ok) {
    t.is(r.problem, problem);
    t.regex(r.message, message);
  }
}

test('approve answers invalid, not_found and conflict without recording anything', async (t) => {
  const { onboarding, changes } = setUp();
  t.like(await onboarding.approve('nope', { id: 'a', credentials: creds }), { ok: false, problem: 'invalid' });
  t.like(await onboarding.approve(fp('A'), { id: 'a', credentials: creds }), { ok: false, problem: 'not_found' });
  onboarding.pending.record(fp('A'), 'ssh-ed25519', '192.0.2.1');
  refused(t, await onboarding.approve(fp('A'), { id: 'file-1', credentials: creds }), 'conflict', /already in the inventory file/);
  refused(t, await onboarding.approve(fp('A'), { id: 'a', credentials: creds, port: 4334 }), 'conflict', /call-home port/);
  refused(t, await onboarding.approve(fp('A'), { id: 'a', credentials: creds, port: 10900 }), 'conflict', /device live-1/);
  refused(t, await onboarding.approve(fp('A'), { id: 'a', credentials: creds, port: 10830 }), 'conflict', /device file-1/);
  refused(t, await onboarding.approve(fp('A'), { id: 'bad id!', credentials: creds }), 'invalid', /id must be/);
  t.is(onboarding.approvals.approved.length, 0);
  t.is(changes(), 0);
  t.truthy(onboarding.pending.get(fp('A')), 'still pending');
});

test('an approval leaves pending, joins the inventory and is told apart from the file', async (t) => {
  const { onboarding, changes, inventory } = setUp();
  onboarding.pending.record(fp('A'), 'ssh-ed25519', '192.0.2.1');
  const r = await onboarding.approve(fp('A'), { id: 'a', credentials: creds });
  t.true(r.ok);
  t.is(changes(), 1);
  t.is(onboarding.pending.get(fp('A')), undefined);
  t.is(inventory().byHostKey(fp('A'))?.id, 'a');
  t.true(onboarding.isApproved('a'));
  t.false(onboarding.isApproved('file-1'));
});

test('reject: only a pending or approved key, and it stays out of pending', async (t) => {
  const { onboarding } = setUp();
  t.like(await onboarding.reject(fp('B')), { ok: false, problem: 'not_found' });
  t.like(await onboarding.reject('nope'), { ok: false, problem: 'invalid' });
  onboarding.pending.record(fp('B'), 'ssh-ed25519', '192.0.2.1');
  t.deepEqual(await onboarding.reject(fp('B')), { ok: true, fingerprint: fp('B') });
  onboarding.pending.record(fp('B'), 'ssh-ed25519', '192.0.2.1');
  t.is(onboarding.pending.get(fp('B')), undefined);
});

test('HTTP maps invalid, not_found and conflict to 400, 404 and 409, and success to 201 and 200', async (t) => {
  const { onboarding } = setUp();
  const http = onboardingAnswers(onboarding);
  t.is((await http.approve('nope', {})).status, 400);
  t.is((await http.approve(fp('C'), { id: 'c', credentials: creds })).status, 404);
  onboarding.pending.record(fp('C'), 'ssh-ed25519', '192.0.2.1');
  t.is((await http.approve(fp('C'), { id: 'file-1', credentials: creds })).status, 409);
  const ok = await http.approve(fp('C'), { id: 'c', credentials: creds });
  t.is(ok.status, 201);
  t.like(ok.body as object, { id: 'c', fingerprint: fp('C'), port: null, credentials: { username: 'u', password: '(set)' } });
  t.is((await http.reject(fp('D'))).status, 404);
  t.deepEqual(await http.reject(fp('C')), { status: 200, body: { fingerprint: fp('C'), state: 'rejected' } });
});
