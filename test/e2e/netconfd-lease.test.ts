// The shared netconfd is stopped by its reaper once the last process that leased it is gone,
// and never while one still lives. A private PEERS_STATE_DIR gives these tests their own
// netconfd, so the one every other test shares is not touched.
import anyTest from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, pidAlive, requirePeers, sleep, waitFor } from './peers/index.js';

const test = requirePeers(anyTest);
const NETCONFD_MODULE = fileURLToPath(new URL('./peers/netconfd.js', import.meta.url));
const IDLE_MS = 500;

/** A process that takes a lease on the netconfd of `stateDir` and keeps it until killed. */
async function leaseHolder(stateDir: string) {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${JSON.stringify(NETCONFD_MODULE)}); await m.ensureNetconfd(); console.log('up'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PEERS_STATE_DIR: stateDir, PEERS_NETCONFD_IDLE_MS: String(IDLE_MS) } },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
    child.once('exit', (code) => reject(new Error(`lease holder exited with ${code}`)));
  });
  return child;
}

const pidIn = (stateDir: string, file: string): number => Number(readFileSync(join(stateDir, 'netconfd', file), 'utf8'));

test('netconfd stays while any lease holder lives and stops, with its reaper, after the last', async (t) => {
  const stateDir = makeTempDir('chgw-lease-');
  const first = await leaseHolder(stateDir);
  const second = await leaseHolder(stateDir);
  t.teardown(() => (first.kill('SIGKILL'), second.kill('SIGKILL')));
  const netconfd = pidIn(stateDir, 'netconfd.pid');
  const reaper = pidIn(stateDir, 'reaper.pid');
  t.true(pidAlive(netconfd) && pidAlive(reaper));
  t.is(pidIn(stateDir, 'netconfd.managed'), netconfd, 'both holders share one netconfd');

  first.kill('SIGKILL');
  await sleep(IDLE_MS * 4); // several of the reaper's looks, each past its idle time if it miscounted
  t.true(pidAlive(netconfd), 'the second holder still uses it');

  second.kill('SIGKILL');
  await waitFor('the reaper to stop netconfd', () => !pidAlive(netconfd), { timeoutMs: 15_000 });
  await waitFor('the reaper to exit', () => !pidAlive(reaper), { timeoutMs: 5_000 });
  t.pass();
});
