import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeKeyMaterial, fingerprintOfKeyBlob, blobOfPublicKeyLine, keyTypeOfBlob, normalizeHostKey } from '../../src/inventory/identity.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-identity-'));
const haveSshKeygen = (() => {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    return (err as { status?: number }).status !== 127 && (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return true;
})();

function keygen(type: string, bits: string[], comment: string): string {
  const file = path.join(dir, `${type}-${bits.join('')}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...bits, '-N', '', '-C', comment, '-f', file]);
  return file;
}

const kinds: Array<[string, string[], string]> = [
  ['ed25519', [], 'edge-1@lab'],
  ['rsa', ['-b', '2048'], 'rsa key'],
  ['ecdsa', ['-b', '384'], ''],
];

for (const [type, bits, comment] of kinds) {
  test(`fingerprint lines equal ssh-keygen -lf for ${type} keys (public and private files)`, (t) => {
    if (!haveSshKeygen) {
      if (process.env.CI) t.fail('ssh-keygen is missing (install openssh-client)');
      else t.log('SKIPPED LOUDLY: ssh-keygen is missing');
      t.pass();
      return;
    }
    const file = keygen(type, bits, comment);
    const expected = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).trim();
    t.deepEqual(describeKeyMaterial(readFileSync(`${file}.pub`, 'utf8')), [expected]);
    const fingerprint = expected.split(' ')[1]!;
    t.is(normalizeHostKey(readFileSync(`${file}.pub`, 'utf8')), fingerprint);
    t.is(fingerprintOfKeyBlob(blobOfPublicKeyLine(readFileSync(`${file}.pub`, 'utf8'))), fingerprint);
    const fromPrivate = execFileSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' }).trim();
    t.is(describeKeyMaterial(readFileSync(file, 'utf8'))[0]!.split(' ')[1], fromPrivate.split(' ')[1]);
  });
}

test('certificate fingerprints are printed like openssl x509 -fingerprint -sha256', (t) => {
  let pem: string;
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=edge-1',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'c.key'),
        '-out',
        path.join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    pem = readFileSync(path.join(dir, 'c.pem'), 'utf8');
  } catch {
    t.log('SKIPPED LOUDLY: openssl is missing');
    t.pass();
    return;
  }
  const expected = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', path.join(dir, 'c.pem')], { encoding: 'utf8' }).trim();
  t.is(describeKeyMaterial(pem)[0]!.toLowerCase(), expected.toLowerCase());
});

test('key type is read from the blob; malformed entries are refused', (t) => {
  const blob = blobOfPublicKeyLine('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl');
  t.is(keyTypeOfBlob(blob), 'ssh-ed25519');
  t.is(keyTypeOfBlob(Buffer.from([0, 0])), 'unknown');
  t.throws(() => normalizeHostKey('SHA256:tooshort'), { message: /malformed fingerprint/ });
  t.throws(() => normalizeHostKey('ssh-ed25519 notbase64!!'));
  t.throws(() => describeKeyMaterial('hello world'));
});
