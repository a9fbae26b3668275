// Reply routing on a shared device session, with no streams: replies go by request order.
import test from 'ava';
import { ReplyRouter, type Request } from '../../../src/device/held/reply-router.js';

interface C {
  name: string;
  here: boolean;
}
const present = (c: C) => c.here;
const req = (owner: Request<C>['owner'], messageId: string, operation = 'get'): Request<C> => ({ owner, messageId, operation, start: 0 });
const reply = (messageId?: string) => ({ root: 'rpc-reply', ...(messageId ? { messageId } : {}) }) as const;

test('replies go to the senders in the order the requests were sent, whatever message-id they carry', (t) => {
  const r = new ReplyRouter<C>();
  const a: C = { name: 'a', here: true };
  r.sent(req(a, '1'));
  r.sent(req('keepalive', 'k1'));
  r.sent(req(a, '2'));
  t.is(r.outstanding, 3);
  const first = r.route(reply('something-else'), a, present);
  t.like(first, { kind: 'client', client: a, request: { messageId: '1' } });
  t.like(r.route(reply('k1'), a, present), { kind: 'gateway', request: { owner: 'keepalive' } });
  t.like(r.route(reply('2'), a, present), { kind: 'client', client: a });
  t.is(r.outstanding, 0);
  t.deepEqual(r.route(reply('3'), a, present), { kind: 'unsolicited' });
});

test('a reply owed to a client that left is stale; the session is drained only once it is answered', (t) => {
  const r = new ReplyRouter<C>();
  const a: C = { name: 'a', here: true };
  r.sent(req(a, '1'));
  r.sent(req('gateway', 'release-1', 'unlock'));
  t.true(r.owesNoneGone(present));
  a.here = false;
  t.false(r.owesNoneGone(present), 'a reply to a departed client is still due');
  t.like(r.route(reply('1'), undefined, present), { kind: 'stale', client: a });
  t.true(r.owesNoneGone(present), "the gateway's own requests do not hold the next client back");
  t.like(r.route(reply('release-1'), undefined, present), { kind: 'gateway', request: { owner: 'gateway', operation: 'unlock' } });
});

test('notifications and anything not a reply go to the holder, or nowhere; they answer no request', (t) => {
  const r = new ReplyRouter<C>();
  const a: C = { name: 'a', here: true };
  r.sent(req(a, '1'));
  t.deepEqual(r.route({ root: 'notification' }, a, present), { kind: 'client', client: a });
  t.deepEqual(r.route(undefined, undefined, present), { kind: 'nobody' });
  t.is(r.outstanding, 1, 'the request is still owed');
});
