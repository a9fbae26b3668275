// `callhome-gateway sessions ...`: the live client sessions of a running gateway (list) and
// ending one (kill), through its HTTP API; same --api and token options as `devices`.
import { parseArgs } from 'node:util';
import { GatewayError } from '../errors.js';
import { call, s, table, token, type Io } from './devices.js';

export const SESSIONS_HELP = `Usage: callhome-gateway sessions [list] [--api URL] [token options]
       callhome-gateway sessions kill ID [--api URL] [token options]

Talks to a running gateway's HTTP API.
  --api URL            the gateway's API (default $CALLHOME_GATEWAY_API or http://127.0.0.1:9834)
  --token-file FILE    file holding the admin bearer token (kill needs it)
  --token TOKEN        the token itself (prefer --token-file or $CALLHOME_GATEWAY_TOKEN)
list shows every live client session: its ID, user, device, client address, start, bytes
each way and RPCs. kill ends one; the manager sees "session ended by an operator" on the
channel's stderr, and the action is audited.`;

type Row = Record<string, unknown>;

export async function runSessions(args: string[], io: Io = { out: (t) => process.stdout.write(t), env: process.env }): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { api: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' } },
  });
  const api = values.api ?? io.env.CALLHOME_GATEWAY_API ?? 'http://127.0.0.1:9834';
  const tok = token(values, io.env);
  const [sub = 'list', arg] = positionals;
  switch (sub) {
    case 'list': {
      const list = (await call(api, 'GET', 'api/sessions', tok)) as Row[];
      const rows = [['ID', 'USER', 'DEVICE', 'ACCESS', 'CLIENT', 'STARTED', 'TO DEVICE', 'TO CLIENT', 'RPCS']];
      for (const x of list) rows.push([s(x.id), s(x.user), s(x.device), s(x.access), s(x.remoteAddress), s(x.startedAt), s(x.bytesToDevice), s(x.bytesToClient), s(x.rpcs)]);
      io.out(table(rows));
      return 0;
    }
    case 'kill': {
      if (!arg) throw new GatewayError('GW_ERR_USAGE', 'sessions kill needs a session ID (see `sessions list`)');
      const answer = (await call(api, 'DELETE', `api/sessions/${encodeURIComponent(arg)}`, tok)) as Row;
      io.out(`ended session ${arg} (user ${s(answer.user)} on ${s(answer.device)})\n`);
      return 0;
    }
    default:
      throw new GatewayError('GW_ERR_USAGE', `unknown sessions command "${sub}" (list, kill)`);
  }
}
