// Hostile API requests: malformed percent-encoding (400, not 500), rejecting fingerprints
// nobody has seen (404, nothing written), reads with a read token, and DNS rebinding
// (a Host name the gateway does not answer to) while /metrics and the probes stay open.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ApprovalStore } from '../../src/onboarding/approvals.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice } from '../helpers/ssh-device.js';
import { makeTempDir } from '../e2e/peers/index.js';

const TOKEN = 'admin-token-for-api-test';
const READ_TOKEN = 'read-token-for-api-test';
const gateways: TestGateway[] = [];
const devices: ScriptedDevice[] = [];
test.after.always(async () => {
  for (const d of devices) d.close();
  for (const g of gateways) await g.close();
});

function request(port: number, method: string, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.serial('malformed percent-encoding answers 400, never 500', async (t) => {
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  gateways.push(g);
  const auth = { Authorization: `Bearer ${TOKEN}` };
  for (const [method, p, headers] of [
    ['GET', '/api/devices/%E0%A4%A', {}],
    ['GET', '/api/devices/%ZZ', {}],
    ['POST', '/api/pending/%E0%A4%A/approve', auth],
    ['DELETE', '/api/pending/%ZZ', auth],
    ['GET', '/api/sessions/%E0%A4%A', {}],
    ['DELETE', '/api/sessions/%ZZ', auth],
    ['POST', '/api/devices/%ZZ/disconnect', auth],
  ] as Array<[string, string, Record<string, string>]>) {
    const r = await request(g.httpPort, method, p, headers);
    t.is(r.status, 400, `${method} ${p}: ${r.text}`);
    t.regex(r.text, /malformed percent-encoding/);
  }
  t.is((await request(g.httpPort, 'GET', 'http://[bad/api/devices')).status, 400, 'a malformed absolute-form target');
  t.false(
    g.logs.some((l) => l.includes('http handler failed')),
    'no handler failure was logged',
  );
});

test.serial('DELETE /api/pending/{fp} rejects only keys that called or were approved; others get 404 and nothing is written', async (t) => {
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN } });
  gateways.push(g);
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const store = path.join(g.config.stateDir, 'approvals.json');
  for (let i = 0; i < 20; i++) {
    const made = 'SHA256:' + String(i).padStart(2, '0') + 'x'.repeat(41);
    const r = await request(g.httpPort, 'DELETE', `/api/pending/${encodeURIComponent(made)}`, auth);
    t.is(r.status, 404, r.text);
  }
  t.false(existsSync(store), 'made-up fingerprints wrote nothing');
  const stranger = new ScriptedDevice();
  devices.push(stranger);
  await stranger.callHome(g.callhomePort);
  await waitFor('the stranger pending', async () => (await g.get<unknown[]>('/api/pending')).body.length === 1, { timeoutMs: 10_000 });
  t.is((await request(g.httpPort, 'DELETE', `/api/pending/${encodeURIComponent(stranger.fingerprint)}`, auth)).status, 200);
  const saved = JSON.parse(readFileSync(store, 'utf8')) as { rejected: Array<{ fingerprint: string }> };
  t.deepEqual(
    saved.rejected.map((r) => r.fingerprint),
    [stranger.fingerprint],
  );
  t.is((await request(g.httpPort, 'DELETE', `/api/pending/${encodeURIComponent(stranger.fingerprint)}`, auth)).status, 404, 'no longer pending');
});

test('the rejected list keeps only the newest entries', (t) => {
  const store = new ApprovalStore(makeTempDir('chgw-rejected'), { maxRejected: 3 });
  const fp = (i: number) => 'SHA256:' + String(i).padStart(2, '0') + 'y'.repeat(41);
  for (let i = 0; i < 5; i++) store.reject(fp(i));
  t.is(store.rejectedCount, 3);
  t.false(store.isRejected(fp(0)));
  t.false(store.isRejected(fp(1)));
  t.true(store.isRejected(fp(4)));
});

test.serial('http.readToken guards reads (the admin token reads too); /metrics and the probes stay open; a read token cannot write', async (t) => {
  const dir = makeTempDir('chgw-readtoken');
  const g = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_HTTP_READTOKEN: READ_TOKEN } });
  gateways.push(g);
  t.is((await request(g.httpPort, 'GET', '/api/devices')).status, 401);
  t.is((await request(g.httpPort, 'GET', '/api/pending', { Authorization: 'Bearer wrong' })).status, 401);
  t.is((await request(g.httpPort, 'GET', '/api/devices', { Authorization: `Bearer ${READ_TOKEN}` })).status, 200);
  t.is((await request(g.httpPort, 'GET', '/api/pending', { Authorization: `Bearer ${TOKEN}` })).status, 200);
  for (const p of ['/metrics', '/healthz', '/readyz']) t.is((await request(g.httpPort, 'GET', p)).status, 200, p);
  const fp = encodeURIComponent('SHA256:' + 'z'.repeat(43));
  t.is((await request(g.httpPort, 'DELETE', `/api/pending/${fp}`, { Authorization: `Bearer ${READ_TOKEN}` })).status, 401);
  // A read token file that cannot be read closes reads to all but the admin token.
  const g2 = await startGateway({ env: { CHGW_HTTP_ADMINTOKEN: TOKEN, CHGW_HTTP_READTOKENFILE: path.join(dir, 'missing') } });
  gateways.push(g2);
  t.is((await request(g2.httpPort, 'GET', '/api/devices')).status, 401);
  t.is((await request(g2.httpPort, 'GET', '/api/devices', { Authorization: `Bearer ${TOKEN}` })).status, 200);
});

test.serial('Host guard: /api answers IP literals, loopback names and http.allowedHosts only; probes and /metrics answer any Host', async (t) => {
  const g = await startGateway({ env: { CHGW_HTTP_HOST: '0.0.0.0', CHGW_HTTP_ALLOWEDHOSTS: 'gateway.example.net,*.svc.cluster.local' } });
  gateways.push(g);
  const port = g.httpPort;
  const allowed = [
    `127.0.0.1:${port}`,
    `[::1]:${port}`,
    `10.1.2.3:${port}`,
    'localhost',
    `localhost:${port}`,
    'app.localhost',
    'Gateway.Example.NET',
    `gateway.example.net:${port}`,
    'callhome.ns.svc.cluster.local',
    'callhome.ns.svc.cluster.local.',
  ];
  for (const host of allowed) t.is((await request(port, 'GET', '/api/devices', { Host: host })).status, 200, host);
  const refused = ['evil.example', `evil.example:${port}`, 'gateway.example.net.evil.example', 'svc.cluster.local', 'localhost.evil.example', '127.0.0.1.nip.io'];
  for (const host of refused) {
    const r = await request(port, 'GET', '/api/devices', { Host: host });
    t.is(r.status, 403, host);
    t.regex(r.text, /unexpected Host header/);
    t.is((await request(port, 'GET', '/api/pending', { Host: host })).status, 403, host);
    for (const p of ['/metrics', '/healthz', '/readyz']) t.is((await request(port, 'GET', p, { Host: host })).status, 200, `${p} with Host ${host}`);
  }
});
