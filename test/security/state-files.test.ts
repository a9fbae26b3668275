// State files survive a power cut: each is written to a temporary file that is fsynced,
// renamed into place, and the directory is fsynced. Temporary files a crash left behind are
// removed at the next start. fsync calls are observed by wrapping node:fs (the module's
// named exports are re-synced), and the descriptor's path read from /proc/self/fd.
import test from 'ava';
import fs, { existsSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { ApprovalStore } from '../../src/onboarding/approvals.js';
import { PortAssignments } from '../../src/northbound/port-assignments.js';
import { Inventory } from '../../src/inventory/inventory.js';
import { createLogger } from '../../src/log.js';
import { startGateway } from '../helpers/gateway.js';
import { makeTempDir } from '../e2e/peers/index.js';

function recordFsyncs<T>(run: () => T): string[] {
  const original = fs.fsyncSync;
  const synced: string[] = [];
  fs.fsyncSync = (fd: number) => {
    try {
      synced.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      synced.push(`fd ${fd}`);
    }
    original(fd);
  };
  syncBuiltinESMExports();
  try {
    run();
  } finally {
    fs.fsyncSync = original;
    syncBuiltinESMExports();
  }
  return synced;
}

test.serial('approvals and assigned ports are fsynced before and after the rename (file and directory)', (t) => {
  const stateDir = path.join(makeTempDir('chgw-durable'), 'state');
  const store = new ApprovalStore(stateDir);
  const synced = recordFsyncs(() => store.approve('SHA256:' + 'Q'.repeat(43), 'ssh-ed25519', { id: 'd1', credentials: { username: 'u', password: 'p' } }));
  t.true(
    synced.some((p) => /approvals\.json\.\d+\.tmp$/.test(p)),
    `the file's data: ${synced.join(', ')}`,
  );
  t.true(synced.includes(stateDir), `the directory holding the rename: ${synced.join(', ')}`);
  t.true(existsSync(path.join(stateDir, 'approvals.json')));

  const ports = new PortAssignments(stateDir, [40000, 40010], createLogger('silent'));
  const inv = new Inventory([{ id: 'p1', hostKeys: [], credentials: { username: 'u' } }]);
  const portSyncs = recordFsyncs(() => ports.assign(inv));
  t.true(
    portSyncs.some((p) => /device-ports\.json\.\d+\.tmp$/.test(p)),
    portSyncs.join(', '),
  );
  t.true(portSyncs.includes(stateDir));
});

test.serial('temporary state files a crash left are removed at start; other files are left alone', async (t) => {
  const dir = makeTempDir('chgw-stale');
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir);
  const stale = [path.join(stateDir, 'approvals.json.999999.tmp'), path.join(stateDir, 'device-ports.json.4242.tmp')];
  const kept = [path.join(stateDir, 'notes.tmp'), path.join(stateDir, 'other.json.12.tmp')];
  for (const f of [...stale, ...kept]) writeFileSync(f, '{"approved": [');
  const g = await startGateway({ env: { CHGW_STATEDIR: stateDir } });
  try {
    for (const f of stale) t.false(existsSync(f), f);
    for (const f of kept) t.true(existsSync(f), f);
    await g.waitForLog(/approvals\.json\.999999\.tmp.*removed a temporary state file left by a crash/);
  } finally {
    await g.close();
  }
});
