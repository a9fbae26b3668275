// Hostile input on every listener (call-home SSH, northbound SSH, HTTP) from a separate
// flood process: thousands of connections from several source addresses, holding them
// silent, sending random bytes, an SSH banner then silence, or half a handshake. Meanwhile a
// real device (sshd + netconfd) keeps its call-home connection and calls again after being
// cut, and a real manager (ncclient) keeps working. The gateway's memory is sampled and
// printed; the limits are checked against the admission counters.
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { deviceConnected } from '../helpers/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { CallHomeDevice, assertNcOk, ensureNetconfd, requirePeers, runNcclient } from '../e2e/peers/index.js';
import type { Admission } from '../../src/limits/admission.js';
import { GatewayError } from '../../src/errors.js';

const test = requirePeers(anyTest);
const FLOOD = fileURLToPath(new URL('./helpers/flood.js', import.meta.url));

let gw: TestGateway;
let device: CallHomeDevice;

test.after.always(async () => {
  await gw?.close();
  await device?.dispose();
});

function runFlood(plan: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLOOD, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, unknown>);
      } catch {
        reject(new Error(`flood exited ${code}: ${out}`));
      }
    });
  });
}

const mib = (n: number) => Math.round(n / 1024 / 1024);

test.serial('a flood on every listener: limits hold, memory stays bounded, a real device and a real manager keep working', async (t) => {
  t.timeout(110_000);
  await ensureNetconfd();
  device = await CallHomeDevice.create({ name: 'hostile' });
  gw = await startGateway({
    inventory: `devices:\n  - id: steady\n    ssh: { hostKeys: [${device.hostKeyFingerprint}] }\n    credentials: { username: ${device.username}, privateKeyFile: ${device.privateKeyFile} }\n`,
    users: 'users:\n  - name: alice\n    password: alice-pw\n    devices: ["*"]\n',
    env: {
      CHGW_LOG_LEVEL: 'info',
      CHGW_CALLHOME_LOGINGRACETIME: '3',
      CHGW_NORTHBOUND_LOGINGRACETIME: '3',
      // Attackers come from 5 addresses per listener, capped at 10 each: 50 held startups
      // stay below `start`, so the real peers on 127.0.0.1 are never dropped early.
      CHGW_CALLHOME_MAXSTARTUPS: '60:30:200',
      CHGW_NORTHBOUND_MAXSTARTUPS: '60:30:200',
    },
  });
  device.persistent('127.0.0.1', gw.callhomePort, { pauseMs: 300 });
  await deviceConnected(gw, 'steady', 20_000);
  const nc = (steps: Parameters<typeof runNcclient>[0]['steps']) =>
    runNcclient({ host: '127.0.0.1', port: gw.northboundPort, username: 'alice@steady', password: 'alice-pw', steps, timeout: 30, processTimeoutMs: 90_000 });
  assertNcOk(await nc([{ op: 'get-config', source: 'running' }]));

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const hardening = (gw.gateway as unknown as { limits: { callhomeAdmission: Admission; northboundAdmission: Admission } }).limits;
  let maxStartups = { callhome: 0, northbound: 0 };
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
    maxStartups = {
      callhome: Math.max(maxStartups.callhome, hardening.callhomeAdmission.startups),
      northbound: Math.max(maxStartups.northbound, hardening.northboundAdmission.startups),
    };
  }, 100);
  // A failure before the end must not leave the sampler keeping the worker (and the suite) alive.
  t.teardown(() => clearInterval(sampler));

  const holdMs = 15_000;
  const flood = runFlood({
    sources: 5,
    holdMs,
    concurrency: 60,
    targets: [
      { kind: 'ssh', port: gw.callhomePort, count: 4500 },
      { kind: 'ssh', port: gw.northboundPort, count: 4500 },
      { kind: 'http', port: gw.httpPort, count: 1000 },
    ],
  });

  // During the flood: a long manager session, a new manager session, the API, and the
  // device cut off and calling again.
  await new Promise((r) => setTimeout(r, 1500));
  t.log(`flood running; ${Math.round(performance.now())} ms since start`);
  const longSession = nc([
    { op: 'get-config', source: 'running' },
    { op: 'sleep', seconds: 3 },
    { op: 'get-config', source: 'running' },
    { op: 'sleep', seconds: 3 },
    { op: 'get', filter: '<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"/>' },
  ]);
  const t0 = Date.now();
  assertNcOk(await nc([{ op: 'get-config', source: 'running' }, { op: 'close-session' }]));
  const newSessionMs = Date.now() - t0;
  t.is((await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).status, 200);
  assertNcOk(await longSession);
  const longMs = Date.now() - t0;
  const reconnectsBefore = gw.logs.filter((l) => /"device":"steady".*device connected/.test(l)).length;
  gw.gateway.registry.get('steady')!.kill(new GatewayError('GW_ERR_DEVICE_CLOSED', 'cut by the test'));
  await waitFor('the device to call again during the flood', () => gw.logs.filter((l) => /"device":"steady".*device connected/.test(l)).length > reconnectsBefore, {
    timeoutMs: 20_000,
  });
  const reconnectMs = Date.now() - t0 - longMs;
  t.log(`during the flood: new manager session ${newSessionMs} ms, long session done at ${longMs} ms, device back after ${reconnectMs} ms`);

  const stats = await flood;
  clearInterval(sampler);
  global.gc?.();
  await new Promise((r) => setTimeout(r, 500));
  const after = process.memoryUsage().rss;
  const rejected = await gw.metric('callhome_connections_total{transport="ssh",result="rejected_limit"}');
  const timeouts = await gw.metric('callhome_connections_total{transport="ssh",result="timeout"}');
  t.log(`flood: ${JSON.stringify(stats)}`);
  t.log(
    `gateway RSS: baseline ${mib(baseline)} MiB, peak ${mib(peak)} MiB, after ${mib(after)} MiB; startups max callhome ${maxStartups.callhome} northbound ${maxStartups.northbound}; call-home rejected_limit ${rejected}, timeout ${timeouts}; new manager session took ${newSessionMs} ms`,
  );
  t.true((stats.opened as number) >= Math.min(5000, (stats.planned as number) / 2), 'the flood opened thousands of connections');
  t.true(maxStartups.callhome <= 60 && maxStartups.northbound <= 60, 'per-source caps held the startups down');
  t.true(rejected > 100, 'call-home refusals counted as rejected_limit');
  t.true(timeouts > 0, 'held call-home connections cut at loginGraceTime and counted as timeout');
  t.true(peak - baseline < 200 * 1024 * 1024, `memory grew by ${mib(peak - baseline)} MiB`);
  t.true(gw.logs.some((l) => /client connection refused: too many connections not yet authenticated from this address/.test(l)));
  // Still fine after the flood.
  assertNcOk(await nc([{ op: 'get-config', source: 'running' }]));
  t.is((await gw.get<{ state: string }>('/api/devices/steady')).body.state, 'connected');
});
