// The live-session registry and the operator routes of the API, without real peers (those
// are in test/e2e/operator.test.ts): the per-device gauge keeps series only for devices with
// sessions; writes need the token, answer 404 for what does not exist, and are audited.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { AuditLog } from '../../src/audit/audit.js';
import { DeviceRegistry } from '../../src/device/registry.js';
import { operatorActions } from '../../src/http/operator.js';
import { createLogger } from '../../src/log.js';
import { GatewayError } from '../../src/errors.js';
import { GatewayMetrics } from '../../src/metrics.js';
import { ClientSessions, type LiveClientSession } from '../../src/northbound/sessions.js';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

function fake(device: string, ended: GatewayError[]): LiveClientSession {
  return {
    user: 'alice',
    device,
    remoteAddress: '192.0.2.1:5000',
    access: 'read-only',
    kind: 'channel',
    stats: () => ({ bytesToDevice: 10, bytesToClient: 20, rpcs: 1, denied: 0 }),
    end: (reason) => ended.push(reason),
  };
}

test('the per-device gauge has a series only while a device has sessions; kill ends the session it names', async (t) => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const sessions = new ClientSessions('replica-a', metrics.deviceClientSessions);
  const ended: GatewayError[] = [];
  const a = sessions.add('s1', fake('edge-1', ended));
  const b = sessions.add('s2', fake('edge-1', ended));
  const c = sessions.add('s3', fake('edge-2', ended));
  const text = await metrics.registry.metrics();
  t.regex(text, /callhome_device_client_sessions\{device="edge-1"\} 2/);
  t.regex(text, /callhome_device_client_sessions\{device="edge-2"\} 1/);
  t.like(sessions.get('s1'), { id: 's1', replica: 'replica-a', device: 'edge-1', bytesToDevice: 10, bytesToClient: 20, rpcs: 1, access: 'read-only' });
  t.true(sessions.kill('s3', new GatewayError('GW_ERR_OPERATOR', 'session ended by an operator')));
  t.is(ended[0]?.code, 'GW_ERR_OPERATOR');
  t.false(sessions.kill('nope', new GatewayError('GW_ERR_OPERATOR', 'x')));
  c();
  c(); // twice is harmless
  a();
  const after = await metrics.registry.metrics();
  t.notRegex(after, /device="edge-2"/, 'no series for a device without sessions');
  t.regex(after, /callhome_device_client_sessions\{device="edge-1"\} 1/);
  b();
  t.notRegex(await metrics.registry.metrics(), /callhome_device_client_sessions\{/);
  t.deepEqual(sessions.list(), []);
});

test('operator routes: token required and audited, 404 for unknown targets, 405 for other methods, reads follow requireTokenForReads', async (t) => {
  const token = 'sessions-token-0123456789';
  const gw = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: token, CHGW_HTTP_REQUIRETOKENFORREADS: 'true' } });
  t.teardown(() => gw.close());
  const base = `http://127.0.0.1:${gw.httpPort}`;
  const auth = { Authorization: `Bearer ${token}` };
  t.is((await fetch(`${base}/api/sessions`)).status, 401);
  const list = await fetch(`${base}/api/sessions`, { headers: auth });
  t.is(list.status, 200);
  t.deepEqual(await list.json(), []);
  t.is((await fetch(`${base}/api/sessions/x1`, { headers: auth })).status, 404);
  t.is((await fetch(`${base}/api/sessions/x1`, { method: 'DELETE' })).status, 401);
  t.is((await fetch(`${base}/api/sessions/x1`, { method: 'DELETE', headers: { Authorization: 'Bearer wrong' } })).status, 401);
  t.is((await fetch(`${base}/api/sessions/x1`, { method: 'DELETE', headers: { ...auth, 'User-Agent': 'pager/1.0' } })).status, 404);
  t.is((await fetch(`${base}/api/sessions/x1`, { method: 'POST', headers: auth })).status, 405);
  t.is((await fetch(`${base}/api/devices/edge-9/disconnect`, { method: 'POST', headers: auth })).status, 404);
  t.is((await fetch(`${base}/api/devices/edge-9/disconnect`, { method: 'DELETE', headers: auth })).status, 405);
  const read = () =>
    readFileSync(gw.config.audit.file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const records = await waitFor('four audit records', () => (read().length >= 4 ? read() : undefined), { timeoutMs: 5_000 });
  t.deepEqual(
    records.map((r) => [r.event, r.action, r.target, r.actor, r.result]),
    [
      ['admin', 'session-kill', 'x1', 'none', 'unauthorized'],
      ['admin', 'session-kill', 'x1', 'none', 'unauthorized'],
      ['admin', 'session-kill', 'x1', 'admin-token', 'not_found'],
      ['admin', 'device-disconnect', 'edge-9', 'admin-token', 'not_found'],
    ],
  );
  t.is(records[2]!.userAgent, 'pager/1.0');
  t.false(JSON.stringify(records).includes(token), 'the token is never recorded');
});

test('refused operator writes are recorded at most 20 a minute; the rest are counted into the next record', (t) => {
  const lines: string[] = [];
  const audit = new AuditLog({ stream: new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) }) });
  let clock = 1_000_000;
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const api = operatorActions({
    sessions: new ClientSessions('r', metrics.deviceClientSessions),
    registry: new DeviceRegistry(metrics),
    audit,
    logger: createLogger('silent'),
    now: () => clock,
  });
  for (let i = 0; i < 25; i++) api.unauthorized('session-kill', `s${i}`, { remoteAddress: '198.51.100.7:1' });
  t.is(lines.length, 20);
  clock += 60_000;
  api.unauthorized('device-disconnect', 'edge-1', { remoteAddress: '198.51.100.7:2' });
  t.like(JSON.parse(lines[20]!), { event: 'admin', action: 'device-disconnect', result: 'unauthorized', suppressed: 5 });
  t.is(api.killSession('nope', { remoteAddress: '10.0.0.1:3' }).status, 404);
  t.like(JSON.parse(lines[21]!), { actor: 'admin-token', result: 'not_found' });
});
