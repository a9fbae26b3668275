// `callhome-gateway devices ...`: the operator's view of a running gateway through its
// HTTP API (list, show, pending, approve, reject). Prints tables; never prints a secret.
// The token comes from --token-file, $CALLHOME_GATEWAY_TOKEN or --token (in that order of
// preference: a token on the command line is visible to other local users).
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GatewayError } from '../errors.js';

export const DEVICES_HELP = `Usage: callhome-gateway devices [list | show ID | pending] [--api URL] [token options]
       callhome-gateway devices approve FINGERPRINT --id ID --username USER
                        (--password-stdin | --password-file FILE | --key-file FILE [--passphrase-file FILE]) [--port N]
       callhome-gateway devices reject FINGERPRINT
       callhome-gateway devices disconnect ID

Talks to a running gateway's HTTP API.
  --api URL            the gateway's API (default $CALLHOME_GATEWAY_API or http://127.0.0.1:9834)
  --token-file FILE    file holding the admin bearer token
  --token TOKEN        the token itself (prefer --token-file or $CALLHOME_GATEWAY_TOKEN)
approve records the device (kept in the gateway's stateDir); its next call home is accepted.
--password-stdin reads the device password from stdin and sends it (kept 0600 in stateDir).
Credential files are read by the gateway: give paths on the gateway's host, under its
onboarding.secretsDir (without one, the gateway takes no file paths from the API).
reject refuses the fingerprint for good and drops it from the pending list.
disconnect drops a connected device's connection (it calls home again by itself); its
client sessions end with the reason on their stderr. Writes need the admin token.
list shows LAST ERROR: why the device's last attempt failed (auth_failed, timeout, ...).`;

export interface Io {
  out: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function token(values: { token?: string; 'token-file'?: string }, env: NodeJS.ProcessEnv): string | undefined {
  if (values['token-file']) {
    try {
      return readFileSync(values['token-file'], 'utf8').trim();
    } catch (err) {
      throw new GatewayError('GW_ERR_USAGE', `cannot read --token-file ${values['token-file']}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return env.CALLHOME_GATEWAY_TOKEN || values.token || undefined;
}

export async function call(api: string, method: string, urlPath: string, tok: string | undefined, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(urlPath, api.endsWith('/') ? api : api + '/'), {
      method,
      // Audited with the request: there is one admin token, so say who is holding it here.
      headers: {
        'User-Agent': `callhome-gateway-cli (${userInfo().username}@${hostname()})`,
        ...(tok ? { Authorization: `Bearer ${tok}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    throw new Error(`cannot reach the gateway API at ${api}: ${cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = (parsed as { error?: string })?.error ?? text.trim();
    throw new Error(`${method} ${urlPath}: ${res.status} ${msg}`);
  }
  return parsed;
}

type Row = Record<string, unknown>;
export const s = (v: unknown) => (v === null || v === undefined ? '-' : String(v));

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function runDevices(args: string[], io: Io = { out: (t) => process.stdout.write(t), env: process.env }): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      id: { type: 'string' },
      username: { type: 'string' },
      'password-file': { type: 'string' },
      'password-stdin': { type: 'boolean' },
      'key-file': { type: 'string' },
      'passphrase-file': { type: 'string' },
      port: { type: 'string' },
    },
  });
  const api = values.api ?? io.env.CALLHOME_GATEWAY_API ?? 'http://127.0.0.1:9834';
  const tok = token(values, io.env);
  const [sub = 'list', arg] = positionals;
  const usage = (m: string) => new GatewayError('GW_ERR_USAGE', m);
  switch (sub) {
    case 'list': {
      const list = (await call(api, 'GET', 'api/devices', tok)) as Row[];
      // Cluster mode: which replica holds each connected device.
      const clustered = list.some((d) => 'replica' in d);
      const rows = [['ID', 'STATE', ...(clustered ? ['REPLICA'] : []), 'TRANSPORT', 'REMOTE', 'PORT', 'SESSIONS', 'SOURCE', 'LAST ERROR']];
      for (const d of list) {
        const e = d.lastError as { reason?: string; at?: string } | null | undefined;
        rows.push([
          s(d.id),
          s(d.state),
          ...(clustered ? [s(d.replica)] : []),
          s(d.transport),
          s(d.remoteAddress),
          s(d.port),
          s(d.sessions),
          s(d.source ?? 'inventory'),
          e ? `${e.reason} at ${e.at}` : '-',
        ]);
      }
      io.out(table(rows));
      return 0;
    }
    case 'show': {
      if (!arg) throw usage('devices show needs a device ID');
      const d = (await call(api, 'GET', `api/devices/${encodeURIComponent(arg)}`, tok)) as Row;
      const rows: string[][] = [];
      for (const [k, v] of Object.entries(d)) {
        if (Array.isArray(v)) {
          rows.push([k, v.length === 0 ? '-' : String(v[0])]);
          for (const more of v.slice(1)) rows.push(['', String(more)]);
        } else if (v !== null && typeof v === 'object') {
          rows.push([
            k,
            Object.entries(v)
              .map(([a, b]) => `${a}=${s(b)}`)
              .join(' '),
          ]);
        } else rows.push([k, s(v)]);
      }
      io.out(table(rows));
      return 0;
    }
    case 'pending': {
      const list = (await call(api, 'GET', 'api/pending', tok)) as Row[];
      const rows = [['FINGERPRINT', 'KEY TYPE', 'REMOTE', 'FIRST SEEN', 'LAST SEEN', 'ATTEMPTS']];
      for (const p of list) rows.push([s(p.fingerprint), s(p.keyType), s(p.remoteAddress), s(p.firstSeen), s(p.lastSeen), s(p.attempts)]);
      io.out(table(rows));
      return 0;
    }
    case 'approve': {
      if (!arg) throw usage('devices approve needs a FINGERPRINT');
      if (!values.id) throw usage('devices approve needs --id');
      if (!values.username) throw usage('devices approve needs --username');
      if (!values['password-stdin'] && !values['password-file'] && !values['key-file']) {
        throw usage('devices approve needs --password-stdin, --password-file or --key-file');
      }
      const abs = (f: string | undefined) => (f ? path.resolve(f) : undefined);
      const password = values['password-stdin'] ? await readStdin() : undefined;
      if (password === '') throw usage('--password-stdin: no password on stdin');
      const credentials = Object.fromEntries(
        Object.entries({
          username: values.username,
          password,
          passwordFile: abs(values['password-file']),
          privateKeyFile: abs(values['key-file']),
          passphraseFile: abs(values['passphrase-file']),
        }).filter(([, v]) => v !== undefined),
      );
      let port: number | undefined;
      if (values.port !== undefined) {
        port = Number(values.port);
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw usage('--port must be 1..65535');
      }
      const answer = (await call(api, 'POST', `api/pending/${encodeURIComponent(arg)}/approve`, tok, { id: values.id, credentials, ...(port ? { port } : {}) })) as Row;
      io.out(`approved ${s(answer.fingerprint)} as ${s(answer.id)}: its next call home is accepted\n`);
      return 0;
    }
    case 'reject': {
      if (!arg) throw usage('devices reject needs a FINGERPRINT');
      await call(api, 'DELETE', `api/pending/${encodeURIComponent(arg)}`, tok);
      io.out(`rejected ${arg} for good\n`);
      return 0;
    }
    case 'disconnect': {
      if (!arg) throw usage('devices disconnect needs a device ID');
      await call(api, 'POST', `api/devices/${encodeURIComponent(arg)}/disconnect`, tok);
      io.out(`disconnected ${arg}: it calls home again by itself\n`);
      return 0;
    }
    default:
      throw usage(`unknown devices command "${sub}" (list, show, pending, approve, reject, disconnect)`);
  }
}
