// The value formats of the configuration schema, registered with convict on import: each
// names what a bad value must look like, in the one-line error loadConfig reports.
import convict from 'convict';
import { parseStartups } from '../limits/startups.js';

/**
 * The shortest SSH keepalive interval the configuration accepts. A keepalive request queues
 * behind channel data, so on a busy or slow link shorter intervals cut live connections
 * (ssh2 issue #474). Tests lower it by editing the loaded Config object, never through here.
 */
export const MIN_KEEPALIVE_INTERVAL = 10;

/** "30000-30999" → [30000, 30999]; undefined when malformed. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first < 1 || last > 65535 || first > last) return undefined;
  return [first, last];
}

// Environment values arrive as strings.
const toNumber = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value);

/** A number format: `ok` tells a valid number, `must` what one must be. */
function numberFormat(name: string, ok: (n: number) => boolean, must: string): void {
  convict.addFormat({
    name,
    validate(value: unknown) {
      if (typeof value !== 'number' || !ok(value)) throw new Error(must);
    },
    coerce: toNumber,
  });
}

numberFormat('seconds', (n) => Number.isFinite(n) && n >= 0, 'must be a number of seconds >= 0');
numberFormat('positive-int', (n) => Number.isInteger(n) && n >= 1, 'must be a whole number >= 1');
numberFormat('whole-number', (n) => Number.isInteger(n) && n >= 0, 'must be a whole number >= 0');
numberFormat(
  'keepalive-seconds',
  (n) => Number.isFinite(n) && n >= MIN_KEEPALIVE_INTERVAL,
  `must be a number of seconds >= ${MIN_KEEPALIVE_INTERVAL} (shorter keepalive intervals cut busy connections)`,
);

convict.addFormat({
  name: 'startups',
  validate(value: unknown) {
    parseStartups(String(value));
  },
});

convict.addFormat({
  name: 'port-range',
  validate(value: unknown) {
    if (value === '') return;
    if (typeof value !== 'string' || parsePortRange(value) === undefined) {
      throw new Error('must be "" (off) or "FIRST-LAST", two ports 1..65535 with FIRST <= LAST');
    }
  },
});

convict.addFormat({
  name: 'ssh-software-version',
  validate(value: unknown) {
    // RFC 4253 §4.2: printable US-ASCII, no whitespace and no minus sign.
    if (typeof value !== 'string' || !/^[\x21-\x2c\x2e-\x7e]{1,64}$/.test(value)) {
      throw new Error('must be 1..64 printable ASCII characters without spaces or "-" (RFC 4253 §4.2)');
    }
  },
});

convict.addFormat({
  name: 'redis-url',
  validate(value: unknown) {
    if (value === '') return;
    if (typeof value !== 'string' || !/^rediss?:\/\/[^\s/]+(\/\d+)?\/?$/.test(value)) {
      throw new Error('must be "" (standalone) or redis://host:port[/db] or rediss://host:port[/db] (no password in the URL: use cluster.redis.passwordFile)');
    }
    if (/^rediss?:\/\/[^/@]*:[^/@]*@/.test(value)) {
      throw new Error('must not carry a password: use cluster.redis.passwordFile');
    }
  },
});
