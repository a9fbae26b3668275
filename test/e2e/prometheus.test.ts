// The alert rules on a real Prometheus scraping a real gateway: a real device (OpenSSH
// `sshd -i` calling home) whose credentials are wrong fails to log in once, and
// CallhomeDeviceAuthFailures goes pending. That needs the counter at 0 before the failure
// (exported from start-up): a series that first appears at 1 is no increase to Prometheus.
import anyTest from 'ava';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { CallHomeDevice, requirePeers, startPrometheus, waitFor, type TestPrometheus } from './peers/index.js';

const test = requirePeers(anyTest);

let gw: TestGateway;
let prom: TestPrometheus;
let device: CallHomeDevice;
let stranger: CallHomeDevice;

test.before(async () => {
  [device, stranger] = await Promise.all([CallHomeDevice.create({ name: 'prom-wrong-creds' }), CallHomeDevice.create({ name: 'prom-stranger' })]);
  // Listed by its host key, with a key the device does not accept: auth_failed.
  gw = await startGateway({
    inventory: `devices:
  - id: edge-wrong
    ssh: { hostKeys: [${device.hostKeyFingerprint}] }
    credentials: { username: ${device.username}, privateKeyFile: ${stranger.privateKeyFile} }
`,
  });
  prom = await startPrometheus({ targets: [`127.0.0.1:${gw.httpPort}`], labels: { namespace: 'e2e' } });
});

test.after.always(async () => {
  await prom?.stop();
  await Promise.all([device?.dispose(), stranger?.dispose()]);
  await gw?.close();
});

const AUTH_FAILED = 'callhome_connections_total{job="callhome-gateway",transport="ssh",result="auth_failed"}';

test.serial('every rule evaluates against the live gateway, and nothing fires while all is well', async (t) => {
  await waitFor('the gateway target to be up', async () => (await prom.targets()).some((x) => x.health === 'up'), { timeoutMs: 30_000 });
  // Two evaluations after the first scrape, so every rule has run on real data.
  await waitFor('the auth_failed series at 0', async () => (await prom.query(AUTH_FAILED))[0]?.value[1] === '0', { timeoutMs: 30_000 });
  await waitFor('every rule evaluated', async () => (await prom.rules()).every((r) => r.health === 'ok'), { timeoutMs: 30_000 });
  const rules = await prom.rules();
  t.true(rules.filter((r) => r.type === 'alerting').length >= 15, `${rules.length} rules loaded`);
  t.deepEqual(
    rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`),
    [],
  );
  // Evaluations before the first scrape saw no `up` yet (CallhomeGatewayTargetMissing
  // pending); from then on, with the gateway healthy, no alert is active.
  const active = async () => (await prom.alerts()).map((a) => `${a.labels.alertname} ${a.state}`);
  await waitFor('no active alert', async () => (await active()).length === 0, { timeoutMs: 10_000 }).catch(() => {});
  t.deepEqual(await active(), [], 'no alert is active before any failure');
});

test.serial('a device that fails to log in once makes CallhomeDeviceAuthFailures pending', async (t) => {
  const attempt = device.callHome('127.0.0.1', gw.callhomePort);
  await attempt.exited;
  await waitFor('the gateway to count auth_failed', async () => (await gw.metric('callhome_connections_total{transport="ssh",result="auth_failed"}')) === 1, {
    timeoutMs: 10_000,
  });
  const alert = await waitFor('CallhomeDeviceAuthFailures to go pending', async () => (await prom.alerts()).find((a) => a.labels.alertname === 'CallhomeDeviceAuthFailures'), {
    timeoutMs: 30_000,
    intervalMs: 250,
  });
  t.is(alert.state, 'pending', 'for: 5m has not passed yet');
  t.is(alert.labels.severity, 'warning');
  t.is(alert.labels.namespace, 'e2e');
  t.is(alert.annotations.runbook_url, 'docs/OPERATIONS.md#callhomedeviceauthfailures');
  t.true(Number(alert.value) > 0, `increase over the last hour: ${alert.value}`); // extrapolated: about 1
  // What made it possible: Prometheus saw the series at 0 before it became 1.
  const [series] = await prom.queryRange(AUTH_FAILED, 120);
  const values = series!.values.map(([, v]) => Number(v));
  t.is(values[0], 0, `the series starts at 0: ${values.join(' ')}`);
  t.is(values.at(-1), 1);
  // The other failure alerts stay quiet: one auth failure is not an unknown device.
  const others = (await prom.alerts()).filter((a) => a.labels.alertname !== 'CallhomeDeviceAuthFailures');
  t.deepEqual(
    others.map((a) => a.labels.alertname),
    [],
  );
});
