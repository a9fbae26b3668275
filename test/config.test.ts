import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configEnvNames, loadConfig } from '../src/config/load.js';
import { isGatewayError } from '../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-config-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('built-in defaults match SPEC.md', (t) => {
  const c = loadConfig([], {});
  t.is(c.callhome.ssh.host, '0.0.0.0');
  t.is(c.callhome.ssh.port, 4334);
  t.is(c.callhome.tls.port, 4335);
  t.true(c.callhome.tls.enabled, 'SPEC.md: false only until TLS call home landed');
  t.is(c.northbound.port, 830);
  t.is(c.http.port, 9834);
  t.is(c.inventory.file, 'config/devices.yaml');
  t.is(c.users.file, 'config/users.yaml');
  t.is(c.stateDir, 'data');
  t.is(c.northbound.hostKeyFile, path.join('data', 'northbound_host_key'));
});

test('YAML and JSON files apply in order, environment wins', (t) => {
  const a = file('a.yaml', 'callhome:\n  ssh:\n    port: 5000\nstateDir: /var/lib/x\n');
  const b = file('b.json', JSON.stringify({ callhome: { ssh: { port: 6000 } }, http: { port: 0 } }));
  const c = loadConfig([a, b], { CHGW_HTTP_PORT: '7000', CHGW_CALLHOME_LOGINGRACETIME: '0.5' });
  t.is(c.callhome.ssh.port, 6000);
  t.is(c.http.port, 7000);
  t.is(c.callhome.loginGraceTime, 0.5);
  t.is(c.northbound.hostKeyFile, path.join('/var/lib/x', 'northbound_host_key'));
});

test('every key has the CHGW_ environment name derived from its path', (t) => {
  const names = configEnvNames();
  t.is(names.get('callhome.ssh.port'), 'CHGW_CALLHOME_SSH_PORT');
  t.is(names.get('northbound.hostKeyFile'), 'CHGW_NORTHBOUND_HOSTKEYFILE');
  t.is(names.get('stateDir'), 'CHGW_STATEDIR');
  for (const [key, env] of names) t.is(env, 'CHGW_' + key.toUpperCase().replace(/\./g, '_'));
});

const bad: Array<[string, () => unknown, RegExp]> = [
  ['unknown key in a file', () => loadConfig([file('u.yaml', 'callhome:\n  sssh: {}\n')], {}), /callhome\.sssh/],
  ['port out of range', () => loadConfig([file('p.yaml', 'northbound:\n  port: 70000\n')], {}), /northbound\.port/],
  ['non-numeric env value', () => loadConfig([], { CHGW_CALLHOME_SSH_PORT: 'abc' }), /CHGW_CALLHOME_SSH_PORT/],
  ['unknown CHGW_ variable', () => loadConfig([], { CHGW_CALLHOME_SSH_PROT: '1' }), /CHGW_CALLHOME_SSH_PROT/],
  ['negative duration', () => loadConfig([], { CHGW_CALLHOME_HELLOTIMEOUT: '-1' }), /helloTimeout/],
  ['missing file', () => loadConfig([path.join(dir, 'nope.yaml')], {}), /nope\.yaml/],
  ['broken YAML', () => loadConfig([file('broken.yaml', 'a: [\n')], {}), /broken\.yaml/],
  ['a list instead of a mapping', () => loadConfig([file('list.yaml', '- 1\n')], {}), /mapping/],
];
for (const [name, fn, message] of bad) {
  test(`bad configuration is refused naming the key: ${name}`, (t) => {
    const err = t.throws(fn);
    t.true(isGatewayError(err, 'GW_ERR_CONFIG'));
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'));
  });
}
