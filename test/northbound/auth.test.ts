import test from 'ava';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import ssh2 from 'ssh2';
import { globToRegExp, hashPassword, parseUsers, verifyPasswordHash } from '../../src/northbound/auth.js';
import { splitUserAtDevice } from '../../src/northbound/server.js';
import { isGatewayError } from '../../src/errors.js';

test('password hashes verify the right password only, and are salted', async (t) => {
  const a = await hashPassword('correct horse');
  const b = await hashPassword('correct horse');
  t.not(a, b);
  t.regex(a, /^scrypt\$32768\$8\$1\$/);
  t.true(await verifyPasswordHash('correct horse', a));
  t.false(await verifyPasswordHash('correct horsf', a));
  t.false(await verifyPasswordHash('correct horse', 'plain'));
});

test('users: hashes, plain lab passwords, keys and device globs', async (t) => {
  const pair = generateUsableEd25519('test key');
  const other = generateUsableEd25519('test key');
  const hash = await hashPassword('pw-alice');
  const users = parseUsers(
    `users:
  - name: alice
    passwordHash: "${hash}"
    authorizedKeys: ["${pair.public}"]
    devices: ["edge-*"]
  - name: lab
    password: labpw
    devices: ["*"]
`,
    'users.yaml',
  );
  t.true(await users.checkPassword('alice', 'pw-alice'));
  t.false(await users.checkPassword('alice', 'labpw'));
  t.true(await users.checkPassword('lab', 'labpw'));
  t.false(await users.checkPassword('nobody', 'labpw'));
  const blob = (ssh2.utils.parseKey(pair.public) as ssh2.ParsedKey).getPublicSSH();
  const otherBlob = (ssh2.utils.parseKey(other.public) as ssh2.ParsedKey).getPublicSSH();
  t.truthy(users.findKey('alice', blob));
  t.is(users.findKey('alice', otherBlob), undefined);
  t.is(users.findKey('lab', blob), undefined);
  t.true(users.mayReach('alice', 'edge-1'));
  t.false(users.mayReach('alice', 'core-1'));
  t.true(users.mayReach('lab', 'core-1'));
  t.false(users.mayReach('nobody', 'edge-1'));
});

test('globs match whole ids; regex characters are literal', (t) => {
  t.true(globToRegExp('edge-?.lab').test('edge-1.lab'));
  t.false(globToRegExp('edge-?.lab').test('edge-1xlab'));
  t.false(globToRegExp('edge').test('edge-1'));
  t.true(globToRegExp('*').test('anything'));
  t.true(globToRegExp('*').test('.leading-dot'));
});

test('globs have classes and alternatives; a malformed one is refused with its reason', (t) => {
  t.true(globToRegExp('edge-[0-9]*').test('edge-7b'));
  t.false(globToRegExp('edge-[0-9]*').test('edge-x'));
  t.true(globToRegExp('{edge,core}-*').test('core-2'));
  t.false(globToRegExp('{edge,core}-*').test('dist-2'));
  const err = t.throws(() => parseUsers('users:\n  - name: bob\n    password: x\n    devices: ["edge-["]\n', 'users.yaml'));
  t.regex(err!.message, /users users\.yaml: .*devices pattern "edge-\[": Missing closing: "\]"/);
});

test('user@device splits at the last @', (t) => {
  t.deepEqual(splitUserAtDevice('alice@edge-1'), { user: 'alice', deviceId: 'edge-1' });
  t.deepEqual(splitUserAtDevice('a@b@edge-1'), { user: 'a@b', deviceId: 'edge-1' });
  t.deepEqual(splitUserAtDevice('alice'), { user: 'alice' });
  t.deepEqual(splitUserAtDevice('alice@'), { user: 'alice@' });
});

for (const [name, yaml, message] of [
  ['no way to log in', 'users: [{ name: a, devices: ["*"] }]', /needs passwordHash/],
  ['a name with @', 'users: [{ name: "a@b", password: x }]', /name must be/],
  ['a fake hash', 'users: [{ name: a, passwordHash: "md5$abc" }]', /hash-password/],
  ['a bad key', 'users: [{ name: a, authorizedKeys: ["ssh-ed25519 nope"] }]', /not an SSH public key/],
  ['unknown key', 'users: [{ name: a, password: x, role: admin }]', /unknown key "role"/],
] as const) {
  test(`a bad users file is refused: ${name}`, (t) => {
    const err = t.throws(() => parseUsers(yaml, 'users.yaml'));
    t.true(isGatewayError(err, 'GW_ERR_USERS'));
    t.regex(err!.message, message);
  });
}

test('access: read-only or read-write (the default); anything else is refused with the key named', (t) => {
  const users = parseUsers('users:\n  - { name: bob, password: x, access: read-only }\n  - { name: alice, password: y }\n', 'users.yaml');
  t.is(users.accessOf('bob'), 'read-only');
  t.is(users.accessOf('alice'), 'read-write');
  const err = t.throws(() => parseUsers('users:\n  - { name: bob, password: x, access: readonly }\n', 'users.yaml'));
  t.regex(err!.message, /user "bob": access must be read-only or read-write/);
});
