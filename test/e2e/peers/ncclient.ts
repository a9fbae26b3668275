// ncclient (Debian's python3-ncclient) as a real NETCONF manager: one session per job,
// driven by test/peers/nc_client.py, results as JSON.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from './constants.js';
import { repoRoot } from './util.js';

export type NcStep =
  | { op: 'get-config'; source?: 'running' | 'candidate' | 'startup'; filter?: string }
  | { op: 'get'; filter?: string }
  | { op: 'edit-config'; target?: 'running' | 'candidate'; config: string; default_operation?: 'merge' | 'replace' | 'none' }
  /** retry_seconds: keep retrying a refused lock this long (other tests share netconfd) */
  | { op: 'lock'; target?: 'running' | 'candidate'; retry_seconds?: number }
  | { op: 'unlock'; target?: 'running' | 'candidate' }
  | { op: 'commit' }
  | { op: 'discard-changes' }
  | { op: 'validate'; source?: 'running' | 'candidate' }
  /** any operation element, e.g. '<get-config>...</get-config>' (ncclient wraps it in <rpc>) */
  | { op: 'rpc'; xml: string }
  | { op: 'close-session' }
  | { op: 'sleep'; seconds: number };

export interface NcJob {
  host: string;
  port: number;
  username: string;
  password?: string;
  /** private key file (OpenSSH format) */
  keyFile?: string;
  /** seconds, for TCP connect and each RPC (default 20) */
  timeout?: number;
  steps: NcStep[];
  /** after the steps: 'drop' the transport (default) or send <close-session> */
  end?: 'drop' | 'close-session';
  stopOnError?: boolean;
  /** kill the python process after this long (default 60 s) */
  processTimeoutMs?: number;
  /** called while the session runs: after connecting and after each step */
  onEvent?: (e: NcEvent) => void;
}

export type NcEvent = { type: 'connected'; sessionId: string } | { type: 'step'; index: number; op: NcStep['op']; ok: boolean };

export interface NcStepResult {
  op: NcStep['op'];
  ok: boolean;
  ms: number;
  /** the whole <rpc-reply> as received */
  reply?: string | null;
  error?: {
    kind: 'rpc-error' | 'timeout' | 'transport' | 'other';
    message: string;
    tag?: string | null;
    type?: string | null;
    xml?: string | null;
  };
}

export type NcConnectErrorKind = 'auth' | 'tcp' | 'ssh-negotiation' | 'subsystem' | 'session-closed' | 'hello' | 'ssh' | 'transport' | 'other';

export interface NcResult {
  /** every step ok (and the session was established) */
  ok: boolean;
  connected: boolean;
  /** TCP + SSH + auth + subsystem + hello */
  connectMs: number;
  sessionId?: string;
  /** framing negotiated by the hello exchange */
  base?: '1.0' | '1.1';
  serverCapabilities: string[];
  steps: NcStepResult[];
  /** why the session could not be established */
  error?: { kind: NcConnectErrorKind; message: string };
  /** what the server wrote on the channel's stderr before closing it (a gateway's reason) */
  channelStderr: string;
  exitCode: number | null;
  /** nc_client.py's stderr: progress lines, the one-line NC_AUTH_FAILED / NC_CONNECT_FAILED reason, tracebacks */
  stderr: string;
  /** true when the harness had to kill the process */
  timedOut: boolean;
}

/** Path of the Python driver. */
export const NC_CLIENT_PY = join(repoRoot(), 'test', 'peers', 'nc_client.py');

/**
 * Runs one ncclient session. Resolves in every case where python ran (check `connected`,
 * `error.kind`, `ok`, `steps[i].ok`); rejects only if python could not be started or its
 * output was not the expected JSON.
 */
export function runNcclient(job: NcJob): Promise<NcResult> {
  const payload = {
    host: job.host,
    port: job.port,
    username: job.username,
    password: job.password ?? null,
    key_filename: job.keyFile ?? null,
    timeout: job.timeout ?? 20,
    steps: job.steps,
    end: job.end ?? 'drop',
    stop_on_error: job.stopOnError ?? false,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(BIN.python3, [NC_CLIENT_PY], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    let pending = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      pending += d;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const c = /^NC_CONNECTED (\S+)/.exec(line);
        const st = /^NC_STEP (\d+) (\S+) (ok|failed)/.exec(line);
        if (c) job.onEvent?.({ type: 'connected', sessionId: c[1]! });
        else if (st) job.onEvent?.({ type: 'step', index: Number(st[1]), op: st[2] as NcStep['op'], ok: st[3] === 'ok' });
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, job.processTimeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${BIN.python3} ${NC_CLIENT_PY}: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      } catch {
        parsed = undefined;
      }
      if (!parsed) {
        if (timedOut) {
          resolve({
            ok: false,
            connected: false,
            connectMs: 0,
            serverCapabilities: [],
            steps: [],
            error: { kind: 'other', message: `nc_client.py killed after ${job.processTimeoutMs ?? 60_000} ms` },
            channelStderr: '',
            exitCode: code,
            stderr,
            timedOut,
          });
          return;
        }
        reject(new Error(`nc_client.py exited ${code} without a result:\n${stderr}\n${stdout}`));
        return;
      }
      resolve({
        ok: parsed.ok as boolean,
        connected: parsed.connected as boolean,
        connectMs: (parsed.connect_ms as number | undefined) ?? 0,
        sessionId: parsed.session_id as string | undefined,
        base: parsed.base as '1.0' | '1.1' | undefined,
        serverCapabilities: (parsed.server_capabilities as string[] | undefined) ?? [],
        steps: (parsed.steps as NcStepResult[] | undefined) ?? [],
        error: parsed.error as NcResult['error'],
        channelStderr: (parsed.channel_stderr as string | undefined) ?? '',
        exitCode: code,
        stderr,
        timedOut,
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(payload));
  });
}

/**
 * The safe way to change config on the shared netconfd: the candidate datastore is shared by
 * every session of every test process, so edit it only while holding its lock (lock waits
 * up to `lockWaitSeconds` for other tests), then commit and unlock. A session that dies
 * while holding the lock has its candidate changes discarded (RFC 6241 §8.3.5.2).
 */
export function lockedEditSteps(config: string, lockWaitSeconds = 15): NcStep[] {
  return [
    { op: 'lock', target: 'candidate', retry_seconds: lockWaitSeconds },
    { op: 'edit-config', target: 'candidate', config },
    { op: 'commit' },
    { op: 'unlock', target: 'candidate' },
  ];
}

/** A readable summary of a result, for assertion messages. */
export function describeNcResult(r: NcResult): string {
  if (!r.connected) return `not connected (${r.error?.kind}: ${r.error?.message}) stderr=${r.stderr.trim()}`;
  const bad = r.steps.filter((s) => !s.ok).map((s) => `${s.op}: ${s.error?.kind} ${s.error?.message}`);
  return `session ${r.sessionId} base:${r.base}; ${r.steps.length} step(s)` + (bad.length ? `; failed: ${bad.join('; ')}` : ', all ok');
}

/** Throws with a readable message unless the session was established and every step ok. */
export function assertNcOk(r: NcResult): NcResult {
  if (!r.ok || !r.connected) throw new Error(`ncclient job failed: ${describeNcResult(r)}`);
  return r;
}
