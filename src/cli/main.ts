#!/usr/bin/env -S node --heap-growing-percent=300
// The command line: `callhome-gateway [run] [--config FILE]...`, `fingerprint [FILE]`,
// `hash-password`. Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration;
// every failure is one line on stderr.
import { readFileSync, realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describeConfigKeys, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import { describeKeyMaterial } from '../inventory/identity.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { hashPassword } from '../northbound/auth.js';
import { runSimulate } from '../simulator/cli.js';
import { CERTS_HELP, runCerts } from './certs.js';
import { DEVICES_HELP, runDevices } from './devices.js';
import { SESSIONS_HELP, runSessions } from './sessions.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const USAGE = `Usage: callhome-gateway <command> [options]

NETCONF Call Home (RFC 8071) gateway: devices call in over SSH, managers dial in over
ordinary NETCONF/SSH.

Commands:
  run [--config FILE]...   run the gateway (the default command)
  fingerprint [FILE]       print the SHA256 fingerprint of an SSH public key or PEM
                           certificate (stdin when FILE is absent or -)
  hash-password            read a password on stdin, print a hash for the users file
  simulate --gateway HOST:PORT --count N   run N simulated call-home devices
                           (see \`simulate --help\`)
  certs init|issue|peer|crl
                           TLS certificates: the gateway's CA and client certificate,
                           device certificates, replicas' peer certificates, CRLs
                           (see \`certs --help\`)
  devices [list|show ID|pending|approve FP --id ID ...|reject FP|disconnect ID]
                           ask a running gateway's API (see \`devices --help\`)
  sessions [list|kill ID]  the live client sessions; end one (see \`sessions --help\`)

Options:
  -h, --help               show help for a command
  -V, --version            print the version

Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.`;

const HELP: Record<string, string> = {
  run: `Usage: callhome-gateway run [--config FILE]...

Runs the gateway. Configuration comes from built-in defaults, then each --config file
(JSON or YAML) in order, then CHGW_<KEY_PATH> environment variables
(callhome.ssh.port -> CHGW_CALLHOME_SSH_PORT). SIGTERM/SIGINT close gracefully: /readyz
turns 503, listeners stop accepting, RPC replies in flight may finish for shutdown.grace
seconds; exit 0 after a clean drain, 1 if the grace ran out or a second signal closed at
once. SIGHUP re-reads the inventory and users files.

Keys:
${describeConfigKeys().join('\n')}`,
  fingerprint: `Usage: callhome-gateway fingerprint [FILE]

Prints what \`ssh-keygen -lf FILE\` prints for SSH public keys (one line per key, e.g.
"256 SHA256:... comment (ED25519)"), or what \`openssl x509 -noout -fingerprint -sha256\`
prints for PEM certificates. Reads stdin when FILE is absent or "-".`,
  certs: CERTS_HELP,
  devices: DEVICES_HELP,
  sessions: SESSIONS_HELP,
  'hash-password': `Usage: callhome-gateway hash-password

Reads one password from stdin (prompting without echo on a terminal) and prints an
scrypt hash for the \`passwordHash:\` field of the users file.`,
};

class UsageError extends Error {}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function promptHidden(prompt: string): Promise<string> {
  const muted = new Writable({ write: (_c, _e, done) => done() });
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

async function cmdFingerprint(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw new UsageError('fingerprint takes at most one FILE');
  const file = positionals[0];
  let text: string;
  if (file === undefined || file === '-') {
    text = await readStdin();
  } else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`);
    }
  }
  let lines: string[];
  try {
    lines = describeKeyMaterial(text);
  } catch (err) {
    throw new UsageError(`${file ?? 'stdin'}: ${describeError(err)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return EXIT_OK;
}

async function cmdHashPassword(args: string[]): Promise<number> {
  parseArgs({ args, allowPositionals: false, options: {} });
  const raw = process.stdin.isTTY ? await promptHidden('Password: ') : await readStdin();
  const password = raw.replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('empty password');
  process.stdout.write((await hashPassword(password)) + '\n');
  return EXIT_OK;
}

/** Exit code 2 for errors of usage or configuration, 1 for the rest. */
function isUsageError(err: unknown): boolean {
  return (
    err instanceof UsageError ||
    (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true ||
    isGatewayError(err, 'GW_ERR_CONFIG') ||
    isGatewayError(err, 'GW_ERR_INVENTORY') ||
    isGatewayError(err, 'GW_ERR_USERS') ||
    isGatewayError(err, 'GW_ERR_USAGE')
  );
}

async function cmdRun(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, allowPositionals: false, options: { config: { type: 'string', short: 'c', multiple: true } } });
  // Until the configuration names a level, a start-up failure is still a JSON line (the
  // one-line reason goes to stderr as well, from main()).
  let logger = createLogger('info');
  let config: Config;
  let gateway: Gateway;
  try {
    config = loadConfig(values.config ?? []);
    logger = createLogger(config.log.level);
    gateway = new Gateway(config, logger);
    await gateway.start();
  } catch (err) {
    const exitCode = isUsageError(err) ? EXIT_USAGE : EXIT_FAILURE;
    logger.fatal({ reason: isGatewayError(err) ? err.code : undefined, exitCode }, `not started: ${describeError(err)}`);
    throw err;
  }
  const stopped = await new Promise<{ exitCode: number; signal?: NodeJS.Signals; exitReason: string }>((resolve) => {
    let stopping: NodeJS.Signals | undefined;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: closing at once');
        gateway.destroy();
        resolve({ exitCode: EXIT_FAILURE, signal, exitReason: 'second signal: closed at once' });
        return;
      }
      stopping = signal;
      logger.info({ signal, grace: config.shutdown.grace }, 'closing gracefully');
      gateway.close().then(
        (clean) => resolve(clean ? { exitCode: EXIT_OK, signal, exitReason: 'drained' } : { exitCode: EXIT_FAILURE, signal, exitReason: 'shutdown.grace ran out' }),
        (err: unknown) => {
          logger.error({ err: describeError(err) }, 'close failed');
          resolve({ exitCode: EXIT_FAILURE, signal, exitReason: `close failed: ${describeError(err)}` });
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      logger.info('SIGHUP: reloading inventory and users');
      void gateway.reloadInventory();
      void gateway.reloadUsers();
    });
  });
  // The last line of a run: why it ended and with which exit code.
  logger.info(stopped, `stopped: ${stopped.exitReason}`);
  return stopped.exitCode;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  run: cmdRun,
  fingerprint: cmdFingerprint,
  'hash-password': cmdHashPassword,
  simulate: (args) => runSimulate(args),
  certs: (args) => runCerts(args),
  devices: (args) => runDevices(args),
  sessions: (args) => runSessions(args),
};

export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '-V' || first === '--version') {
    process.stdout.write(version() + '\n');
    return EXIT_OK;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(USAGE + '\n');
    return EXIT_OK;
  }
  const named = first !== undefined && !first.startsWith('-');
  const command = named ? first : 'run';
  const args = named ? argv.slice(1) : argv;
  const handler = COMMANDS[command];
  if (!handler) {
    process.stderr.write(`callhome-gateway: unknown command "${command}" (see --help)\n`);
    return EXIT_USAGE;
  }
  if ((args.includes('--help') || args.includes('-h')) && command !== 'simulate') {
    process.stdout.write((HELP[command] ?? USAGE) + '\n');
    return EXIT_OK;
  }
  try {
    return await handler(args);
  } catch (err) {
    process.stderr.write(`callhome-gateway: ${describeError(err)}\n`);
    return isUsageError(err) ? EXIT_USAGE : EXIT_FAILURE;
  }
}

// Run when executed (also through the npm bin symlink), not when imported by tests.
function invokedDirectly(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Listeners and timers are closed by now; anything left must not keep the process up.
      setTimeout(() => process.exit(code), 200).unref();
    },
    (err: unknown) => {
      process.stderr.write(`callhome-gateway: ${describeError(err)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}

export { GatewayError };
