// Locks a client leaves on a shared device session, with no streams: what the gateway
// releases, and how (RFC 6241 §7.5: <discard-changes/> before unlocking the candidate).
import test from 'ava';
import { SessionLocks, releaseOperations, targetDatastore } from '../../../src/device/held/session-locks.js';

test('a client that leaves holding locks has each released; one it unlocked itself is not', (t) => {
  const locks = new SessionLocks<string>();
  t.deepEqual(locks.granted('a', 'lock', 'running', true), []);
  t.deepEqual(locks.granted('a', 'lock', 'candidate', true), []);
  t.deepEqual(locks.granted('a', 'lock', 'startup', true), []);
  t.deepEqual(locks.granted('a', 'unlock', 'startup', true), []);
  t.deepEqual(locks.granted('b', 'lock', 'startup', true), []);
  t.deepEqual(locks.left('a').sort(), ['candidate', 'running']);
  t.deepEqual(locks.left('a'), [], 'released once');
  t.deepEqual(locks.of('b'), ['startup'], "another client's locks are its own");
});

test('a lock granted after its client left is released at once', (t) => {
  const locks = new SessionLocks<string>();
  t.deepEqual(locks.granted('a', 'lock', 'candidate', false), ['candidate']);
  t.deepEqual(locks.left('a'), []);
  t.deepEqual(locks.granted('a', 'unlock', 'candidate', false), [], 'an unlock answered late releases nothing');
});

test('the candidate is discarded before it is unlocked; other datastores are only unlocked', (t) => {
  t.deepEqual(releaseOperations('candidate'), [
    { operation: 'discard-changes', body: '<discard-changes/>' },
    { operation: 'unlock', body: '<unlock><target><candidate/></target></unlock>' },
  ]);
  t.deepEqual(releaseOperations('running'), [{ operation: 'unlock', body: '<unlock><target><running/></target></unlock>' }]);
});

test('the datastore of a <lock>/<unlock> is read from its <target>, prefixed or not', (t) => {
  t.is(targetDatastore('<rpc message-id="1"><lock><target><candidate/></target></lock></rpc>'), 'candidate');
  t.is(targetDatastore('<nc:rpc><nc:unlock><nc:target>\n  <nc:running/></nc:target></nc:unlock></nc:rpc>'), 'running');
  t.is(targetDatastore('<rpc><lock></lock></rpc>'), undefined);
});
