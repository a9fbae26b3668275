// The approvals store on its own: kept in stateDir with mode 0600, merged with the
// inventory file where the file wins on any conflict, validated before it is recorded.
import test from 'ava';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApprovalStore, loadMergedInventory } from '../../src/onboarding/approvals.js';

const fp = (c: string) => 'SHA256:' + c.repeat(43);

test('approvals persist (0600), merge with the file, and the file wins on id, host key and port', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-appr-'));
  const pw = path.join(dir, 'pw');
  writeFileSync(pw, 'secret\n');
  const store = new ApprovalStore(path.join(dir, 'state'), { secretsDir: dir });
  store.approve(fp('A'), 'ssh-ed25519', { id: 'new-1', credentials: { username: 'u', passwordFile: pw } });
  store.approve(fp('B'), 'ssh-ed25519', { id: 'file-1', credentials: { username: 'u', passwordFile: pw } }); // id clash
  store.approve(fp('C'), 'ssh-ed25519', { id: 'new-2', credentials: { username: 'u', passwordFile: pw } }); // key clash
  store.approve(fp('D'), 'ssh-ed25519', { id: 'new-3', credentials: { username: 'u', passwordFile: pw }, port: 10830 }); // port clash
  t.is(statSync(store.file).mode & 0o777, 0o600);
  const inv = path.join(dir, 'devices.yaml');
  writeFileSync(
    inv,
    `devices:\n  - id: file-1\n    ssh: { hostKeys: ["${fp('E')}"] }\n    credentials: { username: x, password: y }\n  - id: file-2\n    ssh: { hostKeys: ["${fp('C')}"] }\n    credentials: { username: x, password: y }\n    port: 10830\n`,
  );
  const reopened = new ApprovalStore(path.join(dir, 'state'), { secretsDir: dir });
  t.is(reopened.approved.length, 4, 'kept across a restart');
  const { inventory, approvedIds } = loadMergedInventory(inv, reopened);
  t.deepEqual([...approvedIds], ['new-1']);
  t.deepEqual([...inventory.devices.keys()].sort(), ['file-1', 'file-2', 'new-1']);
  t.is(inventory.byHostKey(fp('B')), undefined, 'the approval that reused a file id is not merged');
  t.is(inventory.byHostKey(fp('C'))?.id, 'file-2');
  t.is(inventory.get('new-1')?.credentials.password, 'secret');
});

test('approvals are validated before they are recorded; reject withdraws an approval for good', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-appr-'));
  const store = new ApprovalStore(path.join(dir, 'state'), { secretsDir: dir });
  t.throws(() => store.approve(fp('A'), 'ssh-ed25519', { id: 'bad id!', credentials: { username: 'u', password: 'p' } }), { message: /id must be/ });
  t.throws(() => store.approve(fp('A'), 'ssh-ed25519', { id: 'ok', credentials: { username: 'u' } }), { message: /need one of/ });
  t.throws(() => store.approve(fp('A'), 'ssh-ed25519', { id: 'ok', credentials: { username: 'u', passwordFile: 'relative' } }), { message: /absolute path/ });
  t.throws(() => store.approve(fp('A'), 'ssh-ed25519', { id: 'ok', credentials: { username: 'u', passwordFile: path.join(dir, 'nonexistent') } }), { message: /cannot be read/ });
  t.throws(() => store.approve(fp('A'), 'ssh-ed25519', { id: 'ok', credentials: { username: 'u', password: 'p', token: 'x' } }), { message: /unknown credentials key/ });
  store.approve(fp('A'), 'ssh-ed25519', { id: 'ok', credentials: { username: 'u', password: 'p' } });
  store.reject(fp('A'));
  t.is(store.approved.length, 0);
  t.true(store.isRejected(fp('A')));
});
