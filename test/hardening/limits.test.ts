// The admission rules on their own (no peers): OpenSSH's MaxStartups arithmetic, the
// per-source cap, the grace deadline, the failure back-off, the open-file ceiling, session
// caps, and the configuration keys that drive them.
import test from 'ava';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Admission, type RejectReason } from '../../src/limits/admission.js';
import { FdCeiling } from '../../src/limits/fd-ceiling.js';
import { SourcePenalties, sourceKey } from '../../src/limits/penalties.js';
import { SessionCaps } from '../../src/limits/session-caps.js';
import { parseStartups } from '../../src/limits/startups.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { sshPolicy } from '../../src/ssh/policy.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy() {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
  }
}
const sock = (addr: string) => new FakeSocket(addr) as unknown as Socket & FakeSocket;
const NO_PENALTY = { after: 3, baseSeconds: 0, maxSeconds: 0, exempt: [] };

test('maxStartups parses "start:rate:full" and a single number; bad values are refused', (t) => {
  t.deepEqual(parseStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
  t.deepEqual(parseStartups('20'), { start: 20, rate: 100, full: 20 });
  for (const bad of ['', '10:30', '0:30:100', '10:130:100', '50:30:10', 'a:b:c', '-1']) t.throws(() => parseStartups(bad), undefined, bad);
  t.throws(() => loadConfig([], { CHGW_CALLHOME_MAXSTARTUPS: '10:30' }), { message: /maxStartups|start:rate:full/ });
  const c = loadConfig([], { CHGW_NORTHBOUND_PERSOURCEMAXSTARTUPS: '3', CHGW_CALLHOME_FAILUREBACKOFF_EXEMPT: '10.0.0.0/8,192.0.2.1' });
  t.is(c.northbound.perSourceMaxStartups, 3);
  t.deepEqual(c.callhome.failureBackoff.exempt, ['10.0.0.0/8', '192.0.2.1']);
  t.is(c.callhome.maxStartups, '10:30:100');
});

test('early random drop between start and full, all refused at full (OpenSSH arithmetic)', (t) => {
  let r = 0;
  const rejected: RejectReason[] = [];
  const adm = new Admission(
    { startups: parseStartups('2:30:6'), perSource: 0, graceSeconds: 0, penalties: NO_PENALTY },
    { rejected: (why) => rejected.push(why) },
    undefined,
    () => r,
  );
  const held = [adm.admit(sock('192.0.2.1')), adm.admit(sock('192.0.2.2'))];
  t.true(held.every(Boolean));
  // At 2 startups: drop probability 30%. random 0.29 -> dropped, 0.31 -> admitted.
  r = 0.29;
  t.is(adm.admit(sock('192.0.2.3')), undefined);
  r = 0.31;
  t.truthy(adm.admit(sock('192.0.2.3')));
  // At 3: 30 + 70 * 1/4 = 47.5%.
  r = 0.47;
  t.is(adm.admit(sock('192.0.2.4')), undefined);
  r = 0.48;
  t.truthy(adm.admit(sock('192.0.2.4')));
  r = 0.999;
  t.truthy(adm.admit(sock('192.0.2.5')));
  t.truthy(adm.admit(sock('192.0.2.6')));
  t.is(adm.startups, 6);
  t.is(adm.admit(sock('192.0.2.7')), undefined, 'full');
  t.deepEqual(rejected, ['random_drop', 'random_drop', 'startups_full']);
  held[0]!.authenticated();
  t.is(adm.startups, 5, 'an authenticated connection no longer counts');
});

test('per-source cap; a closed socket frees its slot', (t) => {
  const adm = new Admission({ startups: parseStartups('100:30:100'), perSource: 2, graceSeconds: 0, penalties: NO_PENALTY });
  const a = sock('198.51.100.7');
  t.truthy(adm.admit(a));
  t.truthy(adm.admit(sock('198.51.100.7')));
  const third = sock('198.51.100.7');
  t.is(adm.admit(third), undefined);
  t.true(third.destroyed, 'refused sockets are destroyed at once');
  t.truthy(adm.admit(sock('198.51.100.8')), 'another source is not affected');
  a.destroy();
  t.truthy(adm.admit(sock('198.51.100.7')));
});

test('grace deadline: not authenticated in time -> destroyed, timedOut, counts as a failure', async (t) => {
  const timedOut: string[] = [];
  const adm = new Admission(
    { startups: parseStartups('10:30:100'), perSource: 0, graceSeconds: 0.05, penalties: { after: 1, baseSeconds: 60, maxSeconds: 60, exempt: [] } },
    { timedOut: (a) => timedOut.push(a) },
  );
  const slow = sock('203.0.113.9');
  const quick = sock('203.0.113.10');
  adm.admit(slow);
  adm.admit(quick)!.authenticated();
  await new Promise((r) => setTimeout(r, 120));
  t.true(slow.destroyed);
  t.false(quick.destroyed);
  t.deepEqual(timedOut, ['203.0.113.9']);
  t.is(adm.startups, 0);
  t.true(adm.penalties.blocked('203.0.113.9'), 'the timed-out source is now backed off');
  t.is(adm.admit(sock('203.0.113.9')), undefined);
});

test('failure back-off grows, is capped, forgiven on success, exempt ranges never blocked; IPv6 per /64', (t) => {
  let now = 0;
  const p = new SourcePenalties({ after: 3, baseSeconds: 2, maxSeconds: 10, exempt: ['127.0.0.0/8'] }, () => now);
  p.fail('192.0.2.1');
  p.fail('192.0.2.1');
  t.false(p.blocked('192.0.2.1'));
  p.fail('192.0.2.1');
  t.is(p.remaining('192.0.2.1'), 2);
  p.fail('192.0.2.1');
  t.is(p.remaining('192.0.2.1'), 4);
  p.fail('192.0.2.1');
  p.fail('192.0.2.1');
  t.is(p.remaining('192.0.2.1'), 10, 'capped at maxSeconds');
  now += 10_001;
  t.false(p.blocked('192.0.2.1'));
  p.forgive('192.0.2.1');
  p.fail('192.0.2.1');
  t.false(p.blocked('192.0.2.1'), 'forgiven: counting starts again');
  for (let i = 0; i < 10; i++) p.fail('127.0.0.1');
  t.false(p.blocked('127.0.0.1'));
  t.is(sourceKey('2001:db8:1:2:aaaa::1'), sourceKey('2001:db8:1:2:bbbb::2'));
  t.not(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
  t.is(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
  const small = new SourcePenalties({ after: 1, baseSeconds: 1, maxSeconds: 1, exempt: [], maxSources: 100 });
  for (let i = 0; i < 1000; i++) small.fail(`10.0.${i >> 8}.${i & 255}`);
  t.is(small.size, 100, 'memory bounded');
});

test('open-file ceiling refuses at accept with one clear log line', (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }));
  const fds = new FdCeiling(2, logger);
  const adm = new Admission({ startups: parseStartups('100:30:100'), perSource: 0, graceSeconds: 0, penalties: NO_PENALTY }, {}, fds);
  adm.admit(sock('192.0.2.1'))!.authenticated();
  const second = sock('192.0.2.2');
  adm.admit(second);
  t.is(adm.admit(sock('192.0.2.3')), undefined);
  t.is(adm.admit(sock('192.0.2.4')), undefined);
  t.is(lines.filter((l) => /open file ceiling reached \(2 sockets, limits.maxOpenFiles\)/.test(l)).length, 1);
  second.destroy();
  t.truthy(adm.admit(sock('192.0.2.5')));
});

test('session caps per user and per device', (t) => {
  const caps = new SessionCaps(2, 3);
  const r1 = caps.acquire('alice', 'd1');
  caps.acquire('alice', 'd2');
  t.regex(caps.acquire('alice', 'd3') as string, /maxSessionsPerUser/);
  caps.acquire('bob', 'd1');
  caps.acquire('carol', 'd1');
  t.regex(caps.acquire('dave', 'd1') as string, /maxSessionsPerDevice/);
  (r1 as () => void)();
  t.is(typeof caps.acquire('alice', 'd3'), 'function');
});

test('SSH policy: no SHA-1/CBC by default; Terrapin-exposed negotiation refused without strict kex', (t) => {
  const modern = sshPolicy({ legacyAlgorithms: false, requireStrictKex: false });
  t.deepEqual((modern.algorithms as unknown as { hmac: { remove: string[] } }).hmac.remove, ['hmac-sha1-etm@openssh.com', 'hmac-sha1']);
  const strict = { _protocol: { _strictMode: true } };
  const loose = { _protocol: { _strictMode: false } };
  const n = (cipher: string, mac: string) => ({ kex: 'curve25519-sha256', serverHostKey: 'ssh-ed25519', cs: { cipher, mac }, sc: { cipher, mac } });
  t.is(modern.refusal(strict, n('chacha20-poly1305@openssh.com', '')), undefined);
  t.regex(modern.refusal(loose, n('chacha20-poly1305@openssh.com', '')) ?? '', /Terrapin/);
  t.regex(modern.refusal(loose, n('aes128-ctr', 'hmac-sha2-256-etm@openssh.com')) ?? '', /Terrapin/);
  t.is(modern.refusal(loose, n('aes128-ctr', 'hmac-sha2-256')), undefined);
  t.is(modern.refusal(loose, n('aes128-gcm@openssh.com', '')), undefined);
  t.regex(sshPolicy({ legacyAlgorithms: false, requireStrictKex: true }).refusal(loose, n('aes128-gcm@openssh.com', '')) ?? '', /strict key exchange/);
  const legacy = sshPolicy({ legacyAlgorithms: true, requireStrictKex: false });
  t.true(JSON.stringify(legacy.algorithms).includes('aes128-cbc'));
});
