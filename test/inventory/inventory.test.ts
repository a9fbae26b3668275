import test from 'ava';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseInventory } from '../../src/inventory/inventory.js';
import { isGatewayError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-inventory-'));
const FP = 'SHA256:9C9FsWemPKcbejGUTAQVXbm0gVHhwnArckugaot5fB4';
const FP2 = 'SHA256:Tp91kQEMlrCEmX7bKNNY9S8Zk7ZczkWkmuGjgtzt7iU';
const pair = generateUsableEd25519('test key');
writeFileSync(path.join(dir, 'dev.key'), pair.private);
writeFileSync(path.join(dir, 'dev.pass'), 's3cret\n');
const inv = path.join(dir, 'devices.yaml');

test('the SPEC example parses; defaults fill what an entry lacks; secret files resolve beside the file', (t) => {
  const yaml = `
defaults:
  credentials: { username: admin, password: admin }
devices:
  - id: edge-1
    ssh:
      hostKeys:
        - ${FP}
    credentials:
      username: admin
      password: secret
    port: 10830
  - id: edge-2
    ssh: { hostKeys: ["${pair.public}"] }
  - id: edge-3
    ssh: { hostKeys: [${FP2}] }
    credentials: { privateKeyFile: dev.key }
  - id: edge-4
    ssh: { hostKeys: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }
    credentials: { username: ops, passwordFile: dev.pass }
`;
  const inventory = parseInventory(yaml, inv);
  t.is(inventory.devices.size, 4);
  t.is(inventory.byHostKey(FP)?.id, 'edge-1');
  t.is(inventory.get('edge-1')?.port, 10830);
  t.deepEqual(inventory.get('edge-1')?.credentials, { username: 'admin', password: 'secret' });
  t.deepEqual(inventory.get('edge-2')?.credentials, { username: 'admin', password: 'admin' });
  const keyLineFp = execFileSync('ssh-keygen', ['-lf', '-'], { input: pair.public, encoding: 'utf8' }).split(' ')[1];
  t.is(inventory.byHostKey(keyLineFp!)?.id, 'edge-2');
  // A device naming its own secret must not inherit the default password.
  t.is(inventory.get('edge-3')?.credentials.password, undefined);
  t.is(inventory.get('edge-3')?.credentials.username, 'admin');
  t.truthy(inventory.get('edge-3')?.credentials.privateKey);
  t.is(inventory.get('edge-4')?.credentials.password, 's3cret');
  t.is(inventory.byHostKey('SHA256:unknown'), undefined);
});

const bad: Array<[string, string, RegExp]> = [
  ['bad id', `devices: [{ id: "a b", ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p } }]`, /id must be/],
  [
    'duplicate id',
    `devices:\n  - { id: a, ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p } }\n  - { id: a, ssh: { hostKeys: [${FP2}] }, credentials: { username: u, password: p } }`,
    /duplicate id/,
  ],
  [
    'one key, two devices',
    `devices:\n  - { id: a, ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p } }\n  - { id: b, ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p } }`,
    /also listed for "a"/,
  ],
  ['no host keys', `devices: [{ id: a, ssh: { hostKeys: [] }, credentials: { username: u, password: p } }]`, /hostKeys/],
  ['malformed fingerprint', `devices: [{ id: a, ssh: { hostKeys: ["SHA256:xyz"] }, credentials: { username: u, password: p } }]`, /malformed fingerprint/],
  ['no credentials', `devices: [{ id: a, ssh: { hostKeys: [${FP}] } }]`, /username is required/],
  ['no secret', `devices: [{ id: a, ssh: { hostKeys: [${FP}] }, credentials: { username: u } }]`, /one of password/],
  ['missing key file', `devices: [{ id: a, ssh: { hostKeys: [${FP}] }, credentials: { username: u, privateKeyFile: nope.key } }]`, /cannot be read/],
  ['unknown device key', `devices: [{ id: a, ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p }, colour: red }]`, /unknown key "colour"/],
  [
    'duplicate port',
    `devices:\n  - { id: a, port: 1000, ssh: { hostKeys: [${FP}] }, credentials: { username: u, password: p } }\n  - { id: b, port: 1000, ssh: { hostKeys: [${FP2}] }, credentials: { username: u, password: p } }`,
    /port 1000/,
  ],
  ['broken YAML', `devices: [`, /YAML/],
];
for (const [name, yaml, message] of bad) {
  test(`a bad inventory is refused whole with a one-line reason: ${name}`, (t) => {
    const err = t.throws(() => parseInventory(yaml, inv));
    t.true(isGatewayError(err, 'GW_ERR_INVENTORY'));
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'));
    t.false(err!.message.includes('s3cret'));
  });
}
