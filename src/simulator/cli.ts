// `callhome-gateway simulate`: N simulated call-home devices in this process, a progress
// counter on stderr while they connect, a summary on stdout. Exit codes as for every command:
// 0 success, 1 runtime failure (some device never got in), 2 bad usage.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { describeError } from '../errors.js';
import { Fleet, type FleetProgress, type FleetSummary } from './fleet.js';

export const SIMULATE_HELP = `Usage: callhome-gateway simulate --gateway HOST:PORT --count N [options]

Starts N simulated NETCONF call-home devices (RFC 8071) in this process. Each dials the
gateway, runs SSH as the server on that connection with its own ed25519 host key, and
serves NETCONF (base:1.0 and base:1.1, :candidate, :validate, :writable-running).

Options:
  --gateway HOST:PORT     where the devices call home (port defaults to 4334)
  --count N               number of devices
  --rate R                devices started per second (default 100)
  --reply-size BYTES      size of a full get / get-config reply; suffixes K, M, G (1024-based)
  --write-inventory FILE  write an inventory listing the devices (SPEC.md format) first
  --inventory-only        write the inventory and exit without connecting
  --seed TEXT             derive host keys from TEXT, so the same inventory stays valid
  --username U            user the gateway must log in as (default admin)
  --password P            its password (default admin)
  --password-file FILE    read the password from FILE
  --persistent            reconnect after every disconnect, with jittered back-off
  --keepalive SECONDS     interval of the devices' SSH keepalive probes; 0 turns them
                          off (default 15)
  --duration SECONDS      stop after this long (default: until SIGINT/SIGTERM, or, without
                          --persistent, until every connection has ended)
  -h, --help              show this help
`;

export interface SimulateIo {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Stops the run like SIGINT does. */
  signal?: AbortSignal;
}

class UsageError extends Error {}

interface Settings {
  host: string;
  port: number;
  count: number;
  rate: number;
  replySize: number;
  inventory: string | undefined;
  inventoryOnly: boolean;
  seed: string | undefined;
  username: string;
  password: string | undefined;
  passwordFile: string | undefined;
  persistent: boolean;
  keepalive: number;
  duration: number | undefined;
}

export async function runSimulate(argv: string[], io: SimulateIo = {}): Promise<number> {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  let s: Settings | 'help';
  try {
    s = parseSettings(argv);
  } catch (e) {
    err.write(`callhome-gateway simulate: ${describeError(e)} (see --help)\n`);
    return 2;
  }
  if (s === 'help') {
    out.write(SIMULATE_HELP);
    return 0;
  }

  let password = s.password ?? 'admin';
  if (s.passwordFile !== undefined) {
    try {
      password = (await readFile(s.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (e) {
      err.write(`callhome-gateway simulate: cannot read --password-file: ${describeError(e)}\n`);
      return 2;
    }
  }

  const fleet = new Fleet({
    count: s.count,
    username: s.username,
    password,
    replySize: s.replySize,
    persistent: s.persistent,
    seed: s.seed,
    ssh: { keepaliveInterval: s.keepalive },
  });
  try {
    if (s.inventory !== undefined) {
      await fleet.writeInventory(s.inventory);
      err.write(`simulate: wrote ${s.inventory} (${s.count} devices)\n`);
    }
  } catch (e) {
    err.write(`callhome-gateway simulate: cannot write the inventory: ${describeError(e)}\n`);
    return 1;
  }
  if (s.inventoryOnly) return 0;

  const tty = err.isTTY === true;
  let lastLine = '';
  const render = (p: FleetProgress): void => {
    const line = `simulate: ${p.connected}/${p.total} connected, ${p.started} started, ${p.failed} failed attempts, ${p.reconnects} reconnects`;
    if (tty) {
      err.write(`\r\x1b[K${line}, ${(p.elapsedMs / 1000).toFixed(1)} s`);
    } else if (line !== lastLine) {
      err.write(`${line}, ${(p.elapsedMs / 1000).toFixed(1)} s\n`);
    }
    lastLine = line;
  };
  const endLine = (): void => {
    if (tty && lastLine !== '') err.write('\n');
    lastLine = '';
  };

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  io.signal?.addEventListener('abort', onSignal, { once: true });
  const timers: NodeJS.Timeout[] = [];
  if (s.duration !== undefined) timers.push(setTimeout(onSignal, s.duration * 1000));
  let settled = false;
  const ticker = setInterval(
    () => {
      const p = fleet.progress();
      render(p);
      // without --persistent there is nothing left to serve once every connection has ended
      if (settled && !s.persistent && p.connected === 0) stop.abort();
    },
    tty ? 200 : 2000,
  );
  timers.push(ticker);

  let summary: FleetSummary;
  try {
    const first = await Promise.race([
      fleet.start(s.host, s.port, { rate: s.rate }),
      new Promise<undefined>((resolve) => stop.signal.addEventListener('abort', () => resolve(undefined), { once: true })),
    ]);
    if (first) {
      settled = true;
      render(fleet.progress());
      endLine();
      out.write(`${describeSummary(first)}\n`);
      if (!s.persistent && first.connected === 0) stop.abort();
    }
    if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    summary = fleet.summary();
  } finally {
    for (const t of timers) clearTimeout(t);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.signal?.removeEventListener('abort', onSignal);
    endLine();
    await fleet.close();
  }
  const never = summary.total - summary.everConnected;
  out.write(
    `simulate: stopped after ${(summary.elapsedMs / 1000).toFixed(1)} s: ${summary.everConnected} of ${summary.total} devices logged in at least once, ` +
      `${summary.reconnects} reconnects, ${summary.failed} failed attempts\n`,
  );
  if (never > 0) {
    err.write(`callhome-gateway simulate: ${never} of ${summary.total} devices never got logged in to\n`);
    return 1;
  }
  return 0;
}

export function describeSummary(s: FleetSummary): string {
  const all =
    s.timeToAllConnectedMs === null ? 'not all connected' : `all connected in ${(s.timeToAllConnectedMs / 1000).toFixed(2)} s (${s.handshakesPerSecond.toFixed(0)} logins/s)`;
  return `simulate: ${s.total} devices, ${s.connected} connected, ${s.failed} failed attempts, ${s.reconnects} reconnects; ${all}`;
}

function parseSettings(argv: string[]): Settings | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        gateway: { type: 'string' },
        count: { type: 'string' },
        rate: { type: 'string' },
        'reply-size': { type: 'string' },
        'write-inventory': { type: 'string' },
        'inventory-only': { type: 'boolean' },
        seed: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'password-file': { type: 'string' },
        persistent: { type: 'boolean' },
        keepalive: { type: 'string' },
        duration: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    // parseArgs messages are long and multi-line; keep the first sentence
    throw new UsageError(describeError(e).split('. ')[0]!);
  }
  if (values.help) return 'help';
  const inventoryOnly = values['inventory-only'] === true;
  if (values.count === undefined) throw new UsageError('--count is required');
  const count = positiveInt(values.count, '--count');
  if (count > 1_000_000) throw new UsageError('--count is at most 1000000');
  if (inventoryOnly && values['write-inventory'] === undefined) throw new UsageError('--inventory-only needs --write-inventory FILE');
  let host = '';
  let port = 4334;
  if (values.gateway === undefined) {
    if (!inventoryOnly) throw new UsageError('--gateway HOST:PORT is required');
  } else {
    [host, port] = parseHostPort(values.gateway);
  }
  const rate = values.rate === undefined ? 100 : Number(values.rate);
  if (!(rate > 0)) throw new UsageError(`--rate must be a positive number, not "${values.rate}"`);
  const replySize = values['reply-size'] === undefined ? 0 : parseBytes(values['reply-size']);
  let duration: number | undefined;
  if (values.duration !== undefined) {
    duration = Number(values.duration);
    if (!Number.isFinite(duration) || duration < 0) throw new UsageError(`--duration must be a number of seconds, not "${values.duration}"`);
  }
  const keepalive = values.keepalive === undefined ? 15 : Number(values.keepalive);
  if (!Number.isFinite(keepalive) || keepalive < 0) throw new UsageError(`--keepalive must be a number of seconds, not "${values.keepalive}"`);
  if (values.password !== undefined && values['password-file'] !== undefined) throw new UsageError('give --password or --password-file, not both');
  if (values.username === '') throw new UsageError('--username must not be empty');
  return {
    host,
    port,
    count,
    rate,
    replySize,
    inventory: values['write-inventory'],
    inventoryOnly,
    seed: values.seed,
    username: values.username ?? 'admin',
    password: values.password,
    passwordFile: values['password-file'],
    persistent: values.persistent === true,
    keepalive,
    duration,
  };
}

function positiveInt(v: string, name: string): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1) throw new UsageError(`${name} must be a positive integer, not "${v}"`);
  return Number(v);
}

/** HOST:PORT, [IPv6]:PORT, or HOST alone (IANA netconf-ch-ssh port 4334). */
export function parseHostPort(v: string): [string, number] {
  let host = v;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(v);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if (v.split(':').length === 2) {
    [host, portText] = v.split(':') as [string, string];
  } else if (v.includes(':')) {
    throw new UsageError(`--gateway: write an IPv6 address as [ADDR]:PORT, not "${v}"`);
  }
  if (host === '') throw new UsageError(`--gateway needs a host, not "${v}"`);
  if (portText === undefined) return [host, 4334];
  const port = Number(portText);
  if (!/^[0-9]+$/.test(portText) || port < 1 || port > 65535) throw new UsageError(`--gateway: bad port in "${v}"`);
  return [host, port];
}

/** 1048576, 1M, 512K, 1G (1024-based), 1.5M. */
export function parseBytes(v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG])?(?:i?[bB])?$/.exec(v.trim());
  if (!m) throw new UsageError(`--reply-size must be a number of bytes (suffixes K, M, G), not "${v}"`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  const n = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--reply-size is too large: "${v}"`);
  return n;
}
