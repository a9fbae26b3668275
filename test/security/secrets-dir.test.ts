// The approve API must not make the gateway read files of its own choosing and send them
// to a device. A hostile device (an ssh2 Server recording every password it is sent)
// calls home, and the API is asked to approve it with secret files outside
// onboarding.secretsDir, in stateDir (the TLS CA key), through a symlink and through "..".
// Each is refused, and the device never receives a byte of the key.
import test from 'ava';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice } from '../helpers/ssh-device.js';
import { approveViaApi } from './helpers.js';

const TOKEN = 'admin-token-for-secrets-test';
const gateways: TestGateway[] = [];
const devices: ScriptedDevice[] = [];
test.after.always(async () => {
  for (const d of devices) d.close();
  for (const g of gateways) await g.close();
});

const approve = (g: TestGateway, fingerprint: string, body: unknown) => approveViaApi(g, TOKEN, fingerprint, body);

async function pendingDevice(g: TestGateway, opts: ConstructorParameters<typeof ScriptedDevice>[0] = {}): Promise<ScriptedDevice> {
  const device = new ScriptedDevice(opts);
  devices.push(device);
  await device.callHome(g.callhomePort);
  await waitFor('the device pending', async () => (await g.get<Array<{ fingerprint: string }>>('/api/pending')).body.some((p) => p.fingerprint === device.fingerprint), {
    timeoutMs: 10_000,
  });
  return device;
}

const connected = (g: TestGateway, id: string) => deviceConnected(g, id);

test.serial('without onboarding.secretsDir the API takes no file paths; an inline password is stored 0600 and never echoed', async (t) => {
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  gateways.push(g);
  const caKey = path.join(g.config.stateDir, 'tls', 'ca.key');
  t.true(statSync(caKey).isFile(), 'the gateway made its TLS CA key');
  const device = await pendingDevice(g, { password: 'inline-device-secret' });
  for (const file of [caKey, path.join(g.dir, 'devices.yaml')]) {
    const r = await approve(g, device.fingerprint, { id: 'thief', credentials: { username: 'admin', passwordFile: file } });
    t.is(r.status, 400, file);
    t.regex(r.text, /onboarding\.secretsDir is not set/);
  }
  const ok = await approve(g, device.fingerprint, { id: 'inline', credentials: { username: 'admin', password: 'inline-device-secret' } });
  t.is(ok.status, 201, ok.text);
  t.false(ok.text.includes('inline-device-secret'), 'the answer does not echo the secret');
  t.regex(ok.text, /"password": "\(set\)"/);
  const store = path.join(g.config.stateDir, 'approvals.json');
  t.is(statSync(store).mode & 0o777, 0o600);
  t.true(readFileSync(store, 'utf8').includes('inline-device-secret'), 'the inline secret is kept in the state');
  await device.callHome(g.callhomePort);
  await connected(g, 'inline');
  t.deepEqual(device.passwordsTried, ['inline-device-secret']);
  t.false((await (await fetch(`http://127.0.0.1:${g.httpPort}/api/devices/inline`)).text()).includes('inline-device-secret'));
});

test.serial('with onboarding.secretsDir: stateDir, symlinks out and ".." are refused on the real path; a file inside works; a later symlink swap is caught', async (t) => {
  const g0 = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  await g0.close();
  const secrets = path.join(g0.dir, 'secrets');
  mkdirSync(secrets);
  // The same state directory (and CA key) as g0, now with a secrets directory.
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_ONBOARDING_SECRETSDIR: secrets, CHGW_STATEDIR: g0.config.stateDir } });
  gateways.push(g);
  const caKey = path.join(g.config.stateDir, 'tls', 'ca.key');
  const caKeyText = readFileSync(caKey, 'utf8');
  symlinkSync(caKey, path.join(secrets, 'link-to-ca.key'));
  writeFileSync(path.join(g0.dir, 'outside.pw'), 'outside\n');
  writeFileSync(path.join(secrets, 'device.pw'), 'file-device-secret\n', { mode: 0o600 });
  const device = await pendingDevice(g, { password: 'file-device-secret' });

  const refused: Array<[string, RegExp]> = [
    [caKey, /not under onboarding\.secretsDir/],
    [path.join(secrets, 'link-to-ca.key'), /not under onboarding\.secretsDir/],
    [path.join(secrets, '..', 'outside.pw'), /not under onboarding\.secretsDir/],
    [secrets, /not under onboarding\.secretsDir/],
    ['device.pw', /absolute path/],
  ];
  for (const [file, why] of refused) {
    for (const key of ['passwordFile', 'privateKeyFile'] as const) {
      const r = await approve(g, device.fingerprint, { id: 'thief', credentials: { username: 'admin', [key]: file } });
      t.is(r.status, 400, `${key} ${file}`);
      t.regex(r.text, why, `${key} ${file}`);
    }
  }
  const ok = await approve(g, device.fingerprint, { id: 'filed', credentials: { username: 'admin', passwordFile: path.join(secrets, 'device.pw') } });
  t.is(ok.status, 201, ok.text);
  await device.callHome(g.callhomePort);
  await connected(g, 'filed');
  t.deepEqual(device.passwordsTried, ['file-device-secret']);

  // Someone swaps the approved file for a symlink into stateDir: the next merge refuses it.
  rmSync(path.join(secrets, 'device.pw'));
  symlinkSync(caKey, path.join(secrets, 'device.pw'));
  t.true(await g.gateway.reloadInventory());
  await g.waitForLog(/approval not merged: credentials\.passwordFile .* is not under onboarding\.secretsDir/);
  t.is((await g.get(`/api/devices/filed`)).status, 404);
  await device.callHome(g.callhomePort).catch(() => undefined);
  await waitFor('the device refused', () => device.openConnections === 0, { timeoutMs: 10_000 });
  const firstKeyLine = caKeyText.split('\n')[1]!;
  t.false(
    device.passwordsTried.some((p) => p.includes(firstKeyLine) || p.includes('PRIVATE KEY')),
    'the device never received the CA key',
  );
  t.deepEqual(device.passwordsTried, ['file-device-secret']);
});

test('a secrets directory inside stateDir gives nothing away either', async (t) => {
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  gateways.push(g);
  await g.close();
  const g2 = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_STATEDIR: g.config.stateDir, CHGW_ONBOARDING_SECRETSDIR: g.config.stateDir } });
  gateways.push(g2);
  const device = await pendingDevice(g2);
  const r = await approve(g2, device.fingerprint, { id: 'thief', credentials: { username: 'admin', passwordFile: path.join(g.config.stateDir, 'tls', 'ca.key') } });
  t.is(r.status, 400);
  t.regex(r.text, /lies in the gateway's stateDir/);
  t.deepEqual(device.passwordsTried, []);
});
