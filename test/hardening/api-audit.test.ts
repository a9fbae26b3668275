// The token-guarded API, audit records (ok and rpc-error), session caps, the device
// ceiling and the algorithm policy, against the gateway over real sockets with scripted
// SSH peers (byte-level control the real peers cannot give).
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ServerChannel } from 'ssh2';
import { startGateway } from '../helpers/gateway.js';
import { callHomeConnected, managerSession, withGateway } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { NETCONF_HELLO, ScriptedDevice } from '../helpers/ssh-device.js';
import { CLIENT_HELLO_11, chunked, connectManager, openNetconf } from '../helpers/ssh-manager.js';

const USERS = 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n';
const TOKEN = 'api-token-0123456789abcdef';

function replying(): (ch: ServerChannel) => void {
  return (ch) => {
    ch.write(NETCONF_HELLO);
    let buf = '';
    ch.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const m of buf.matchAll(/<rpc message-id="(\d+)"[^>]*><(get-config|lock)/g)) {
        const body =
          m[2] === 'lock' ? '<rpc-error><error-type>protocol</error-type><error-tag>lock-denied</error-tag><error-severity>error</error-severity></rpc-error>' : '<data/>';
        ch.write(chunked(`<rpc-reply message-id="${m[1]}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">${body}</rpc-reply>`));
      }
      buf = buf.replace(/<rpc message-id="\d+"[^>]*><(get-config|lock)/g, '');
    });
  };
}

test('API: writes need the bearer token, reads optionally; health and metrics stay open; answers validate', async (t) => {
  const gw = await startGateway({ users: USERS, env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_HTTP_REQUIRETOKENFORREADS: 'true' } });
  t.teardown(() => gw.close());
  const base = `http://127.0.0.1:${gw.httpPort}`;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  t.is((await fetch(`${base}/api/devices`)).status, 401);
  t.is((await fetch(`${base}/api/devices`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
  t.is((await fetch(`${base}/api/devices`, { headers: auth })).status, 200);
  for (const p of ['/metrics', '/healthz', '/readyz']) t.is((await fetch(base + p)).status, 200, p);
  const fp = 'SHA256:' + 'A'.repeat(43);
  t.is((await fetch(`${base}/api/pending/${encodeURIComponent(fp)}/approve`, { method: 'POST', body: '{}' })).status, 401);
  t.is((await fetch(`${base}/api/pending/${encodeURIComponent(fp)}/approve`, { method: 'POST', headers: auth, body: '{"id":"x"}' })).status, 404);
  t.is((await fetch(`${base}/api/pending/not-a-fp/approve`, { method: 'POST', headers: auth, body: '{}' })).status, 400);
  t.is((await fetch(`${base}/api/pending/${encodeURIComponent(fp)}/approve`, { method: 'POST', headers: auth, body: 'x'.repeat(70_000) })).status, 413);
  t.is((await fetch(`${base}/api/devices`, { method: 'PUT', headers: auth })).status, 405);
  // A key that never called (and was never approved) cannot be rejected.
  const del = await fetch(`${base}/api/pending/${encodeURIComponent(fp)}`, { method: 'DELETE', headers: auth });
  t.is(del.status, 404);
  t.false(gw.logs.join('\n').includes(TOKEN));
});

test('API: approving with an inline password stores it but never answers it', async (t) => {
  const stranger = new ScriptedDevice({ password: 'inline-device-secret-42' });
  const gw = await startGateway({ users: USERS, env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  t.teardown(async () => {
    stranger.close();
    await gw.close();
  });
  await stranger.callHome(gw.callhomePort);
  await waitFor('pending', async () => (await gw.get<unknown[]>('/api/pending')).body.length === 1, { timeoutMs: 10_000 });
  const res = await fetch(`http://127.0.0.1:${gw.httpPort}/api/pending/${encodeURIComponent(stranger.fingerprint)}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ id: 'inline-1', credentials: { username: stranger.username, password: 'inline-device-secret-42' } }),
  });
  const text = await res.text();
  t.is(res.status, 201, text);
  t.false(text.includes('inline-device-secret-42'));
  t.regex(text, /"password": "\(set\)"/);
  await callHomeConnected(gw, stranger, 'inline-1');
  t.false(gw.logs.join('\n').includes('inline-device-secret-42'));
  const stored = path.join(gw.config.stateDir, 'approvals.json');
  t.true(readFileSync(stored, 'utf8').includes('inline-1'));
});

test('audit: session start/end and one record per RPC with its result or rpc-error tag; no payloads', async (t) => {
  const device = new ScriptedDevice({ onNetconf: replying() });
  const gw = await withGateway(t, { devices: [{ id: 'edge-1', device }], users: USERS });
  const s = await managerSession(t, gw, 'alice@edge-1', { password: 'alice-pw' });
  const { client } = s;
  await s.waitFor(']]>]]>');
  s.channel.write(CLIENT_HELLO_11 + chunked('<rpc message-id="11" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-config><source><running/></source></get-config></rpc>'));
  await s.waitFor('message-id="11"');
  s.channel.write(chunked('<rpc message-id="12" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><lock><target><candidate/></target></lock></rpc>'));
  await s.waitFor('lock-denied');
  client.end();
  const file = gw.config.audit.file;
  await waitFor('session-end record', () => /session-end/.test(readFileSync(file, 'utf8')), { timeoutMs: 10_000 });
  const records = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const [start, ok, err, end] = records;
  t.like(start, { event: 'session-start', user: 'alice', device: 'edge-1' });
  t.is(start!.remoteAddress, '127.0.0.1');
  t.true(Number.isInteger(start!.remotePort));
  t.like(ok, { event: 'rpc', operation: 'get-config', messageId: '11', result: 'ok', deviceSessionId: '7' });
  t.like(err, { event: 'rpc', operation: 'lock', messageId: '12', result: 'lock-denied' });
  t.like(end, { event: 'session-end', session: start!.session });
  t.is(typeof (ok as { durationMs: number }).durationMs, 'number');
  t.false(readFileSync(file, 'utf8').includes('<data'), 'no payloads');
});

test('session cap per user refuses the next session with rejected_limit; device ceiling refuses the next device', async (t) => {
  const d1 = new ScriptedDevice({ onNetconf: replying() });
  const d2 = new ScriptedDevice();
  const gw = await withGateway(t, {
    devices: [
      { id: 'edge-1', device: d1 },
      { id: 'edge-2', device: d2 },
    ],
    connect: ['edge-1'],
    users: USERS,
    env: { CHGW_NORTHBOUND_MAXSESSIONSPERUSER: '1', CHGW_LIMITS_MAXDEVICES: '1' },
  });
  await d2.callHome(gw.callhomePort);
  await gw.waitForLog(/device ceiling reached \(1 connected, limits.maxDevices\): refusing edge-2/);
  t.is(await gw.metric('callhome_connections_total{transport="ssh",result="rejected_limit"}'), 1);
  const c1 = await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' });
  const s1 = await openNetconf(c1);
  await s1.waitFor(']]>]]>');
  const c2 = await connectManager(gw.northboundPort, 'alice@edge-1', { password: 'alice-pw' });
  const s2 = await openNetconf(c2);
  const { code } = await s2.closed;
  t.is(code, 1);
  t.regex(s2.stderr(), /maxSessionsPerUser/);
  t.is(await gw.metric('callhome_client_sessions_total{result="rejected_limit"}'), 1);
  c1.end();
  c2.end();
});

test('algorithm policy: a client offering only CBC, or only hmac-sha1, is refused; modern clients negotiate strict kex', async (t) => {
  const gw = await startGateway({ users: USERS });
  t.teardown(() => gw.close());
  const attempt = (algorithms: ssh2.Algorithms) =>
    new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.once('ready', () => {
        const strict = (c as unknown as { _protocol: { _strictMode?: boolean } })._protocol._strictMode;
        c.end();
        resolve(`ready strict=${strict}`);
      });
      c.once('error', (e: Error) => resolve(`error: ${e.message}`));
      c.connect({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@x', password: 'alice-pw', algorithms, readyTimeout: 5000 });
    });
  t.regex(await attempt({ cipher: ['aes128-cbc'] } as ssh2.Algorithms), /^error: .*(no matching|Handshake failed)/i);
  t.regex(await attempt({ hmac: ['hmac-sha1'], cipher: ['aes128-ctr'] } as ssh2.Algorithms), /^error: .*(no matching|Handshake failed)/i);
  t.is(await attempt({}), 'ready strict=true');
});

test('northbound: a source that keeps failing to log in is blocked at accept, with a growing back-off', async (t) => {
  const gw = await startGateway({
    users: USERS,
    env: { CHGW_NORTHBOUND_FAILUREBACKOFF_AFTER: '2', CHGW_NORTHBOUND_FAILUREBACKOFF_BASESECONDS: '30' },
  });
  t.teardown(() => gw.close());
  const idle = await gw.metric('callhome_open_sockets');
  for (let i = 0; i < 2; i++) {
    await t.throwsAsync(connectManager(gw.northboundPort, 'alice@x', { password: 'wrong' }), { message: /authentication methods failed/ });
  }
  await waitFor('the failed connections to close', async () => (await gw.metric('callhome_open_sockets')) <= idle);
  const blocked = await connectManager(gw.northboundPort, 'alice@x', { password: 'alice-pw' }).then(
    () => 'connected',
    (e: Error) => e.message,
  );
  t.not(blocked, 'connected', 'even the right password is not heard while the source is blocked');
  await gw.waitForLog(/client connection refused: source blocked after repeated failures \(failureBackoff\)/);
});

test('closing the gateway does not wait for silent, never-authenticated connections', async (t) => {
  const gw = await startGateway({ users: USERS });
  const idle = await gw.metric('callhome_open_sockets');
  const sockets = await Promise.all(
    [gw.northboundPort, gw.northboundPort, gw.callhomePort, gw.callhomePort].map(
      (port) =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', () => {});
        }),
    ),
  );
  await waitFor('the gateway to hold the four connections', async () => (await gw.metric('callhome_open_sockets')) >= idle + 4);
  const started = Date.now();
  await gw.close();
  const ms = Date.now() - started;
  t.true(ms < 3000, `close took ${ms} ms (loginGraceTime is 30 s)`);
  for (const s of sockets) s.destroy();
});
