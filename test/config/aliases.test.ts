// The held-session keys have neutral names (callhome.heldSession.*: SSH devices with one
// session read them too); their old names (callhome.tls.*) keep working as aliases, in
// config files and in the environment.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_ALIASES, configEnvNames, describeConfigKeys, loadConfig } from '../../src/config/load.js';
import { configError } from '../helpers/config-error.js';

const dir = mkdtempSync(path.join(tmpdir(), 'chgw-aliases-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('the new names have the defaults the old ones had; the old ones are no keys of their own', (t) => {
  const c = loadConfig([], {});
  t.is(c.callhome.heldSession.keepaliveInterval, 30);
  t.is(c.callhome.heldSession.drainTimeout, 120);
  t.false('keepaliveInterval' in c.callhome.tls);
  t.false('drainTimeout' in c.callhome.tls);
  t.is(configEnvNames().get('callhome.heldSession.keepaliveInterval'), 'CHGW_CALLHOME_HELDSESSION_KEEPALIVEINTERVAL');
  t.is(configEnvNames().get('callhome.heldSession.drainTimeout'), 'CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT');
  t.false(configEnvNames().has('callhome.tls.keepaliveInterval'));
  t.deepEqual(
    [...CONFIG_ALIASES],
    [
      ['callhome.tls.keepaliveInterval', 'callhome.heldSession.keepaliveInterval'],
      ['callhome.tls.drainTimeout', 'callhome.heldSession.drainTimeout'],
    ],
  );
});

test('an old name alone works, in a file and in the environment', (t) => {
  const yaml = file('old.yaml', 'callhome:\n  tls:\n    port: 5335\n    keepaliveInterval: 7\n    drainTimeout: 9\n');
  const fromFile = loadConfig([yaml], {});
  t.is(fromFile.callhome.heldSession.keepaliveInterval, 7);
  t.is(fromFile.callhome.heldSession.drainTimeout, 9);
  t.is(fromFile.callhome.tls.port, 5335, 'the other tls keys are untouched');
  const json = file('old.json', JSON.stringify({ callhome: { tls: { drainTimeout: 11 } } }));
  t.is(loadConfig([json], {}).callhome.heldSession.drainTimeout, 11);
  const fromEnv = loadConfig([], { CHGW_CALLHOME_TLS_KEEPALIVEINTERVAL: '0', CHGW_CALLHOME_TLS_DRAINTIMEOUT: '45' });
  t.is(fromEnv.callhome.heldSession.keepaliveInterval, 0);
  t.is(fromEnv.callhome.heldSession.drainTimeout, 45);
});

test('the new name works, and both names set to the same value is fine', (t) => {
  t.is(loadConfig([file('new.yaml', 'callhome:\n  heldSession:\n    drainTimeout: 60\n')], {}).callhome.heldSession.drainTimeout, 60);
  t.is(loadConfig([], { CHGW_CALLHOME_HELDSESSION_KEEPALIVEINTERVAL: '12' }).callhome.heldSession.keepaliveInterval, 12);
  const both = file('both-same.yaml', 'callhome:\n  tls:\n    drainTimeout: 60\n  heldSession:\n    drainTimeout: 60\n');
  t.is(loadConfig([both], {}).callhome.heldSession.drainTimeout, 60);
  t.is(loadConfig([], { CHGW_CALLHOME_TLS_DRAINTIMEOUT: '5', CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT: '5' }).callhome.heldSession.drainTimeout, 5);
});

test('both names set to different values in one source is a one-line error naming both', (t) => {
  const both = file('both.yaml', 'callhome:\n  tls:\n    keepaliveInterval: 5\n  heldSession:\n    keepaliveInterval: 6\n');
  const inFile = configError(() => loadConfig([both], {}));
  t.is(inFile.split('\n').length, 1);
  t.regex(inFile, /both\.yaml/);
  t.regex(inFile, /callhome\.tls\.keepaliveInterval and callhome\.heldSession\.keepaliveInterval are set to different values/);
  const inEnv = configError(() => loadConfig([], { CHGW_CALLHOME_TLS_DRAINTIMEOUT: '5', CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT: '6' }));
  t.is(inEnv.split('\n').length, 1);
  t.regex(inEnv, /CHGW_CALLHOME_TLS_DRAINTIMEOUT and CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT are set to different values/);
});

test('between sources the usual precedence holds: the environment beats a file whichever name each uses', (t) => {
  const oldInFile = file('old-file.yaml', 'callhome:\n  tls:\n    drainTimeout: 30\n');
  t.is(loadConfig([oldInFile], { CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT: '90' }).callhome.heldSession.drainTimeout, 90);
  const newInFile = file('new-file.yaml', 'callhome:\n  heldSession:\n    drainTimeout: 30\n');
  t.is(loadConfig([newInFile], { CHGW_CALLHOME_TLS_DRAINTIMEOUT: '90' }).callhome.heldSession.drainTimeout, 90);
  t.is(loadConfig([newInFile, oldInFile], {}).callhome.heldSession.drainTimeout, 30);
});

test('a bad value under an old name is reported under the name that was set', (t) => {
  const msg = configError(() => loadConfig([], { CHGW_CALLHOME_TLS_KEEPALIVEINTERVAL: 'soon' }));
  t.regex(msg, /^CHGW_CALLHOME_TLS_KEEPALIVEINTERVAL \(callhome\.heldSession\.keepaliveInterval\): must be a number/);
  const negative = configError(() => loadConfig([file('neg.yaml', 'callhome:\n  tls:\n    drainTimeout: -1\n')], {}));
  t.regex(negative, /drainTimeout/);
});

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('run --help shows the new names and says the old ones are aliases; the CLI refuses a conflict with exit code 2', (t) => {
  const help = describeConfigKeys().join('\n');
  t.regex(
    help,
    /callhome\.heldSession\.keepaliveInterval \(CHGW_CALLHOME_HELDSESSION_KEEPALIVEINTERVAL, default 30\)\n.*\n\s+\(old name callhome\.tls\.keepaliveInterval, CHGW_CALLHOME_TLS_KEEPALIVEINTERVAL: an alias, still read\)/,
  );
  t.regex(
    help,
    /callhome\.heldSession\.drainTimeout \(CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT, default 120\)\n.*\n\s+\(old name callhome\.tls\.drainTimeout, CHGW_CALLHOME_TLS_DRAINTIMEOUT: an alias, still read\)/,
  );
  const cliHelp = spawnSync(process.execPath, [CLI, 'run', '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 });
  t.is(cliHelp.status, 0);
  t.true(cliHelp.stdout.includes('(old name callhome.tls.drainTimeout, CHGW_CALLHOME_TLS_DRAINTIMEOUT: an alias, still read)'));
  const r = spawnSync(process.execPath, [CLI, 'run'], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH, CHGW_STATEDIR: dir, CHGW_CALLHOME_TLS_DRAINTIMEOUT: '5', CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT: '6' },
  });
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /CHGW_CALLHOME_TLS_DRAINTIMEOUT and CHGW_CALLHOME_HELDSESSION_DRAINTIMEOUT are set to different values/);
});
