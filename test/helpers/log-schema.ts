// The log line schema of docs/LOGS.md as a checker: every line the gateway writes (logs and
// audit records) must pass it. The test helpers that start gateways run it on everything
// they collected when the gateway closes, so the whole suite checks the schema.
import { reasonLabel } from '../../src/errors.js';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const AUDIT_EVENTS = new Set(['session-start', 'session-end', 'rpc', 'admin']);
const SECRET_KEYS = ['password', 'passphrase', 'privateKey', 'token'];

type Check = (value: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const matches =
  (re: RegExp): Check =>
  (v) =>
    typeof v === 'string' && re.test(v);

/** Fields with one meaning and one spelling wherever they appear. */
const FIELDS: Record<string, { check: Check; what: string }> = {
  time: { check: (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)) && v.endsWith('Z'), what: 'an ISO 8601 UTC time' },
  name: { check: (v) => v === 'callhome-gateway', what: '"callhome-gateway"' },
  msg: { check: (v) => typeof v === 'string' && v.length > 0, what: 'a non-empty string' },
  reason: { check: matches(/^[a-z][a-z0-9_]*$/), what: 'a lower-case label (the metrics vocabulary), e.g. auth_failed' },
  code: { check: matches(/^GW_ERR_[A-Z_]+$/), what: 'a GW_ERR_* code' },
  remoteAddress: { check: matches(/^[0-9a-fA-F.:]+$/), what: 'an IP address' },
  remotePort: { check: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535, what: 'a port number' },
  device: { check: matches(/^[A-Za-z0-9._-]{1,64}$/), what: 'a device id' },
  user: { check: isString, what: 'a user name' },
  fingerprint: { check: matches(/^(SHA256:[A-Za-z0-9+/]{43}|[0-9A-F]{2}(:[0-9A-F]{2}){31})$/), what: 'an SSH SHA256: or certificate fingerprint' },
  transport: { check: (v) => v === 'ssh' || v === 'tls', what: 'ssh or tls' },
  side: { check: (v) => v === 'callhome' || v === 'northbound', what: 'callhome or northbound' },
  err: { check: isString, what: 'a one-line error description' },
  exitCode: { check: (v) => v === 0 || v === 1 || v === 2, what: 'an exit code (0, 1, 2)' },
};

/** What is wrong with one line, [] when it follows the schema. */
export function logLineProblems(line: string): string[] {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return [`not JSON: ${line.slice(0, 160)}`];
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return [`not a JSON object: ${line.slice(0, 160)}`];
  const problems: string[] = [];
  const at = `${line.slice(0, 200)}`;
  if (!LEVELS.has(o.level as string)) problems.push(`level ${JSON.stringify(o.level)} is not one of ${[...LEVELS].join(', ')}: ${at}`);
  for (const required of ['time', 'name', 'msg']) if (!(required in o)) problems.push(`no ${required}: ${at}`);
  for (const [key, { check, what }] of Object.entries(FIELDS)) {
    if (key in o && o[key] !== undefined && !check(o[key])) problems.push(`${key} ${JSON.stringify(o[key])} is not ${what}: ${at}`);
  }
  if (typeof o.code === 'string' && o.reason !== reasonLabel(o.code)) problems.push(`reason ${JSON.stringify(o.reason)} does not match code ${o.code}: ${at}`);
  if ('remotePort' in o && !('remoteAddress' in o)) problems.push(`remotePort without remoteAddress: ${at}`);
  // The peer's address is remoteAddress/remotePort on both sides, never "host:port" strings.
  for (const key of ['client', 'address', 'peer', 'from']) {
    if (typeof o[key] === 'string' && /^[0-9a-fA-F.:[\]]+:\d+$/.test(o[key] as string)) problems.push(`${key} holds an address:port (use remoteAddress/remotePort): ${at}`);
  }
  for (const key of SECRET_KEYS) if (key in o && o[key] !== '[redacted]') problems.push(`${key} in a log line: ${at}`);
  if (o.audit === true) {
    if (!AUDIT_EVENTS.has(o.event as string)) problems.push(`audit event ${JSON.stringify(o.event)}: ${at}`);
    const required = o.event === 'admin' ? ['action', 'target', 'remoteAddress'] : ['session', 'user', 'device', 'remoteAddress'];
    for (const key of required) if (!(key in o)) problems.push(`audit record without ${key}: ${at}`);
  }
  return problems;
}

/** Problems of many lines (blank lines ignored), at most `limit` of them. */
export function logProblems(lines: Iterable<string>, limit = 20): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    out.push(...logLineProblems(line));
    if (out.length >= limit) break;
  }
  return out;
}
