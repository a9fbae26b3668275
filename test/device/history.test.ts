import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { DeviceHistory } from '../../src/device/history.js';

test('lastError holds the last failed attempt until the device connects; disconnects stay in their own list', (t) => {
  const h = new DeviceHistory();
  t.is(h.view('edge-1').lastError, null);
  h.attemptFailed('edge-1', 'timeout', 'not logged in within 30s', new Date('2026-01-01T00:00:00Z'));
  h.attemptFailed('edge-1', 'auth_failed', "device edge-1 refused the gateway's credentials", new Date('2026-01-01T00:01:00Z'));
  t.deepEqual(h.view('edge-1').lastError, { reason: 'auth_failed', at: '2026-01-01T00:01:00.000Z', message: "device edge-1 refused the gateway's credentials" });
  h.connected('edge-1');
  t.is(h.view('edge-1').lastError, null, 'a connected device has no current error');
  h.disconnected('edge-1', new GatewayError('GW_ERR_OPERATOR', 'device edge-1 disconnected by an operator'));
  t.is(h.view('edge-1').lastError, null);
  t.is(h.view('edge-1').lastDisconnects[0]?.reason, 'GW_ERR_OPERATOR');
  h.attemptFailed('edge-2', 'flapping', 'refused: flapping');
  h.retain(['edge-1']);
  t.is(h.view('edge-2').lastError, null, 'forgotten with the inventory entry');
});
