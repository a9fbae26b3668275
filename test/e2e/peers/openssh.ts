// The OpenSSH client as a NETCONF manager: `ssh -s ... netconf` fed a base:1.0-only
// <hello>, then rpcs in end-of-message framing (RFC 6242 §4.3), one at a time.
import { spawn } from 'node:child_process';
import { BIN, EOM } from './constants.js';
import { CLOSE_SESSION, GET_CONFIG_RUNNING, HELLO_BASE10, rpc } from './xml.js';

export interface OpenSshNetconfOptions {
  host: string;
  port: number;
  /** passed with -l, so names like "alice@edge-1" need no quoting */
  username: string;
  /** private key to log in with (IdentitiesOnly) */
  identityFile?: string;
  /** password login through sshpass instead of a key */
  password?: string;
  /** operation bodies, each wrapped in <rpc message-id="101.."> and sent after the previous reply; default get-config running */
  rpcs?: string[];
  /** send <close-session> (message-id 999) after the rpcs and wait for its reply (default true) */
  closeSession?: boolean;
  /** the client hello (default: base:1.0 only) */
  hello?: string;
  /** kill ssh after this long (default 20 s) */
  timeoutMs?: number;
  extraSshArgs?: string[];
}

export interface OpenSshNetconfResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** the server's <hello> (without the ]]>]]> delimiter) */
  serverHello?: string;
  /** one reply per rpc, in order */
  replies: string[];
  closeReply?: string;
  timedOut: boolean;
  ms: number;
}

export const CLOSE_MESSAGE_ID = '999';
/** How late a reply may be before runOpenSshNetconf sends netconfd its newline. */
const NUDGE_AFTER_MS = 2000;

/** The ssh argument vector this module uses (exported for tests that want to vary it). */
export function sshArgs(o: OpenSshNetconfOptions): string[] {
  const auth = o.password
    ? ['-o', 'BatchMode=no', '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'NumberOfPasswordPrompts=1']
    : ['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', ...(o.identityFile ? ['-o', `IdentityFile=${o.identityFile}`] : [])];
  return [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=10',
    ...auth,
    ...(o.extraSshArgs ?? []),
    '-p',
    String(o.port),
    '-l',
    o.username,
    '-s',
    o.host,
    'netconf',
  ];
}

/**
 * Runs one NETCONF session through `ssh -s netconf`. Resolves when ssh exits (or is killed at
 * the deadline); never rejects for protocol or auth failures: look at code/stderr/replies.
 */
export function runOpenSshNetconf(o: OpenSshNetconfOptions): Promise<OpenSshNetconfResult> {
  const rpcs = o.rpcs ?? [GET_CONFIG_RUNNING];
  const closeSession = o.closeSession ?? true;
  const started = Date.now();
  const cmd = o.password ? BIN.sshpass : BIN.ssh;
  const args = o.password ? ['-e', BIN.ssh, ...sshArgs(o)] : sshArgs(o);
  const env = o.password ? { ...process.env, SSHPASS: o.password } : process.env;

  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    let scanFrom = 0;
    let timedOut = false;
    const messages: string[] = [];
    let sent = 0; // rpcs sent

    const send = (s: string): void => {
      if (!child.stdin.destroyed) child.stdin.write(s);
    };
    // netconfd leaves an <rpc> that reached it in the same read as the client's <hello>
    // unanswered until more input comes (REAL_PEERS.md); under load the two can meet there
    // however long apart they were sent. A newline between messages (allowed in base:1.0
    // framing) is that input: sent once if a reply is 2 s late, it unsticks such a device
    // and changes nothing for any other.
    let nudge: NodeJS.Timeout | undefined;
    const awaitReply = (): void => {
      clearTimeout(nudge);
      nudge = setTimeout(() => send('\n'), NUDGE_AFTER_MS);
    };
    const onMessage = (): void => {
      clearTimeout(nudge);
      // messages[0] is the server hello, messages[1..] replies to what we sent, in order.
      const replies = messages.length - 1;
      if (replies < sent) return;
      if (sent < rpcs.length) {
        send(rpc(101 + sent, rpcs[sent]!) + EOM);
        sent++;
        awaitReply();
      } else if (closeSession && sent === rpcs.length) {
        send(rpc(CLOSE_MESSAGE_ID, CLOSE_SESSION) + EOM);
        sent++;
        awaitReply();
      } else {
        child.stdin.end();
      }
    };

    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      for (;;) {
        const i = stdout.indexOf(EOM, scanFrom);
        if (i < 0) break;
        messages.push(stdout.slice(scanFrom, i).trim());
        scanFrom = i + EOM.length;
        onMessage();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {
      /* ssh may exit before reading everything */
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 20_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(nudge);
      const replies = messages.slice(1, 1 + rpcs.length);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        ...(messages[0] !== undefined ? { serverHello: messages[0] } : {}),
        replies,
        ...(closeSession && messages[1 + rpcs.length] !== undefined ? { closeReply: messages[1 + rpcs.length] } : {}),
        timedOut,
        ms: Date.now() - started,
      });
    });
    // Hellos are sent simultaneously (RFC 6241 §8.1); stdin stays open until the last reply,
    // because EOF makes sshd close the channel before netconfd has answered.
    send(o.hello ?? HELLO_BASE10);
    send(EOM);
  });
}
