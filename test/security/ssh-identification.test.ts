// Both SSH sides announce ssh.identification (default callhome_gateway), never ssh2's own
// `ssh2js<version>`, which tells a scanner the library and its exact version.
import test from 'ava';
import net from 'node:net';
import { loadConfig } from '../../src/config/load.js';
import { isGatewayError } from '../../src/errors.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { ScriptedDevice } from '../helpers/ssh-device.js';

const gateways: TestGateway[] = [];
const devices: ScriptedDevice[] = [];
test.after.always(async () => {
  for (const d of devices) d.close();
  for (const g of gateways) await g.close();
});

function banner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(text.slice(0, end));
      }
    });
    socket.on('error', reject);
  });
}

for (const [title, env, expected] of [
  ['the neutral default', {}, 'SSH-2.0-callhome_gateway'],
  ['a configured one', { CHGW_SSH_IDENTIFICATION: 'AcmeGW_2.1' }, 'SSH-2.0-AcmeGW_2.1'],
] as Array<[string, Record<string, string>, string]>) {
  test.serial(`call home and northbound announce ${title}`, async (t) => {
    const device = new ScriptedDevice();
    devices.push(device);
    const g = await startGateway({ env });
    gateways.push(g);
    await device.callHome(g.callhomePort);
    await waitFor('the gateway ident at the device', () => device.gatewayIdents.length > 0, { timeoutMs: 10_000 });
    t.is(device.gatewayIdents[0], expected);
    t.is(await banner(g.northboundPort), expected);
    t.false(g.logs.join('\n').includes('ssh2js'));
  });
}

test('ssh.identification must be a valid RFC 4253 software version', (t) => {
  for (const bad of ['with space', 'has-minus', '', 'x'.repeat(65)]) {
    const err = t.throws(() => loadConfig([], { CHGW_SSH_IDENTIFICATION: bad }));
    t.true(isGatewayError(err, 'GW_ERR_CONFIG'), bad);
    t.regex(err!.message, /ssh\.identification/);
  }
});
