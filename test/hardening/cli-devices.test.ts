// `callhome-gateway devices` usage errors and an unreachable API: one line on stderr and
// the documented exit codes (2 usage, 1 runtime).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CALLHOME_GATEWAY_TOKEN: '' } });

test('devices: usage errors exit 2, an unreachable API exits 1, each with one line', async (t) => {
  const fp = 'SHA256:' + 'B'.repeat(43);
  for (const [args, re] of [
    [['devices', 'approve', fp, '--username', 'u', '--password-file', '/x'], /needs --id/],
    [['devices', 'approve', fp, '--id', 'x', '--password-file', '/x'], /needs --username/],
    [['devices', 'approve', fp, '--id', 'x', '--username', 'u'], /--password-stdin, --password-file or --key-file/],
    [['devices', 'show'], /needs a device ID/],
    [['devices', 'frobnicate'], /unknown devices command/],
  ] as Array<[string[], RegExp]>) {
    const r = run(args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r)); // a port nobody listens on
  const down = run(['devices', 'list', '--api', `http://127.0.0.1:${port}`]);
  t.is(down.status, 1);
  t.regex(down.stderr, /cannot reach the gateway API at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  const noPassword = spawnSync(process.execPath, [CLI, 'devices', 'approve', fp, '--id', 'x', '--username', 'u', '--password-stdin'], {
    encoding: 'utf8',
    input: '',
    env: { ...process.env, CALLHOME_GATEWAY_TOKEN: '' },
  });
  t.is(noPassword.status, 2);
  t.regex(noPassword.stderr, /--password-stdin: no password on stdin/);
  const help = run(['devices', '--help']);
  t.is(help.status, 0);
  t.regex(help.stdout, /devices approve FINGERPRINT --id ID/);
});
