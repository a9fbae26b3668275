// A real OpenSSH device for bulk and latency runs: the harness's CallHomeDevice (keys,
// sshd_config, `sshd -i` call home, dial-in daemon) with its `netconf` subsystem swapped for
// the streaming one in netconf-stream.ts and its cipher pinned.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CallHomeDevice } from '../../test/e2e/peers/device.js';

export const STREAM_SUBSYSTEM = fileURLToPath(new URL('./netconf-stream.js', import.meta.url));

export async function createStreamingDevice(
  name: string,
  cipher?: string,
  /** rekeyLimit: sshd's RekeyLimit (e.g. '64M'); logLevel DEBUG1 logs every key exchange */
  o: { rekeyLimit?: string; logLevel?: string } = {},
): Promise<CallHomeDevice> {
  const device = await CallHomeDevice.create({ name, logLevel: o.logLevel ?? 'INFO', ensureNetconfd: false });
  const lines = readFileSync(device.sshdConfigFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('Subsystem '));
  lines.push(`Subsystem netconf ${process.execPath} ${STREAM_SUBSYSTEM}`);
  if (cipher) lines.push(`Ciphers ${cipher}`);
  if (o.rekeyLimit) lines.push(`RekeyLimit ${o.rekeyLimit}`);
  writeFileSync(device.sshdConfigFile, lines.join('\n') + '\n');
  return device;
}
