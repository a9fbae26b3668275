// The configuration schema (convict, strict). Sources in rising priority: built-in
// defaults, --config files (JSON or YAML, in order), CHGW_<PATH> environment variables.
// Parsed once here; everything below receives the plain typed object.
import convict from 'convict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { GatewayError } from './errors.js';
import { parseStartups } from './limits/startups.js';

convict.addFormat({
  name: 'seconds',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error('must be a number of seconds >= 0');
    }
  },
  coerce: (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value),
});

convict.addFormat({
  name: 'positive-int',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error('must be a whole number >= 1');
    }
  },
  coerce: (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value),
});

convict.addFormat({
  name: 'startups',
  validate(value: unknown) {
    parseStartups(String(value));
  },
});

convict.addFormat({
  name: 'whole-number',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new Error('must be a whole number >= 0');
    }
  },
  coerce: (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value),
});

const MiB = 1024 * 1024;

// Limits on a listener, after OpenSSH's MaxStartups / PerSourceMaxStartups / PerSourcePenalties.
const admissionKeys = (who: string) => ({
  maxStartups: {
    doc: `${who} connections not yet authenticated: "start:rate:full" (random early drop of rate% from start, all from full)`,
    format: 'startups',
    default: '10:30:100',
  },
  perSourceMaxStartups: {
    doc: `${who} connections not yet authenticated from one source address (IPv6: one /64); 0 = no limit`,
    format: 'whole-number',
    default: 10,
  },
  failureBackoff: {
    after: { doc: 'failures in a row from one source before it is blocked', format: 'positive-int', default: 10 },
    baseSeconds: { doc: 'first block of a failing source, doubled per further failure; 0 = never block', format: 'seconds', default: 1 },
    maxSeconds: { doc: 'longest block of a failing source', format: 'seconds', default: 600 },
    exempt: { doc: 'source addresses or CIDR ranges never blocked (comma-separated in the environment)', format: Array, default: [] as string[] },
  },
});

const schema = {
  log: {
    level: {
      doc: 'log level',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
    },
  },
  stateDir: { doc: 'what the gateway must keep between runs', format: String, default: 'data' },
  inventory: {
    file: { doc: 'the device inventory (YAML)', format: String, default: 'config/devices.yaml' },
  },
  users: {
    file: { doc: 'the clients allowed in (YAML)', format: String, default: 'config/users.yaml' },
  },
  callhome: {
    ssh: {
      host: { doc: 'call-home SSH listener address', format: String, default: '0.0.0.0' },
      port: { doc: 'call-home SSH listener port (IANA netconf-ch-ssh)', format: 'port', default: 4334 },
    },
    tls: {
      enabled: { doc: 'listen for TLS call home', format: Boolean, default: true },
      host: { doc: 'call-home TLS listener address', format: String, default: '0.0.0.0' },
      port: { doc: 'call-home TLS listener port (IANA netconf-ch-tls)', format: 'port', default: 4335 },
      // TLS call home: the gateway's client certificate and the held NETCONF session's liveness.
      certFile: {
        doc: "the gateway's TLS client certificate (PEM); default <stateDir>/tls/gateway.crt, created on first start",
        format: String,
        default: '',
      },
      keyFile: { doc: 'its private key (PEM); default <stateDir>/tls/gateway.key', format: String, default: '' },
      keepaliveInterval: {
        doc: 'seconds between NETCONF-level keepalives (<get> with an empty filter) on an idle TLS device session; 0 turns them off',
        format: 'seconds',
        default: 30,
      },
      drainTimeout: {
        doc: "seconds a TLS device may take to answer a departed client's requests before its connection is dropped",
        format: 'seconds',
        default: 120,
      },
    },
    loginGraceTime: {
      doc: 'seconds from TCP accept until the device is identified and logged in to',
      format: 'seconds',
      default: 30,
    },
    helloTimeout: {
      doc: "seconds from login until the device's <hello> on its first channel, the netconf channel open included (and the same on the second channel that tests whether it allows several)",
      format: 'seconds',
      default: 30,
    },
    flapping: {
      window: { doc: 'seconds: a device connection that ends sooner than this after login is a short one', format: 'seconds', default: 10 },
      count: { doc: 'short connections in a row after which a device is shown as flapping', format: 'positive-int', default: 3 },
    },
    ...admissionKeys('call-home'),
  },
  northbound: {
    host: { doc: 'shared NETCONF/SSH endpoint address', format: String, default: '0.0.0.0' },
    port: { doc: 'shared NETCONF/SSH endpoint port', format: 'port', default: 830 },
    hostKeyFile: {
      doc: "the gateway's own SSH host key; default <stateDir>/northbound_host_key",
      format: String,
      default: '',
    },
    loginGraceTime: {
      doc: 'seconds from TCP accept until the client has authenticated',
      format: 'seconds',
      default: 30,
    },
    ...admissionKeys('northbound'),
    maxSessionsPerUser: { doc: 'NETCONF sessions one user may hold at once (all devices)', format: 'positive-int', default: 32 },
    maxSessionsPerDevice: { doc: 'NETCONF client sessions one device may carry at once', format: 'positive-int', default: 64 },
  },
  http: {
    host: { doc: 'health, metrics and API address', format: String, default: '0.0.0.0' },
    port: { doc: 'health, metrics and API port', format: 'port', default: 9834 },
    adminToken: { doc: 'bearer token the API write endpoints require (empty: writes refused)', format: String, default: '', sensitive: true },
    adminTokenFile: { doc: 'file holding the admin bearer token (wins over adminToken)', format: String, default: '' },
    requireTokenForReads: { doc: 'also require the token for GET /api/* (never for /metrics, /healthz, /readyz)', format: Boolean, default: false },
  },
  limits: {
    maxDevices: { doc: 'devices connected at once; more are refused with a log line', format: 'positive-int', default: 10000 },
    maxOpenFiles: { doc: 'sockets held at once; 0 = the open-file limit less a reserve', format: 'whole-number', default: 0 },
  },
  ssh: {
    legacyAlgorithms: { doc: 'also offer SHA-1 and CBC algorithms (ssh-rsa, hmac-sha1, diffie-hellman-group14-sha1, aes*-cbc) for old peers', format: Boolean, default: false },
    requireStrictKex: { doc: 'refuse every SSH peer without strict key exchange (Terrapin); otherwise only peers that negotiated a cipher Terrapin attacks', format: Boolean, default: false },
  },
  audit: {
    enabled: { doc: 'write audit records (client sessions and RPCs)', format: Boolean, default: true },
    file: { doc: 'append audit records to this file; empty = stdout, with the logs', format: String, default: '' },
  },
  netconf: {
    maxMessageBytes: {
      doc: 'largest NETCONF message that may cross a splice (messages are streamed, not buffered)',
      format: 'positive-int',
      default: 4096 * MiB,
    },
    maxHelloBytes: {
      doc: 'largest <hello> accepted (hellos are read whole to learn the framing)',
      format: 'positive-int',
      default: 1 * MiB,
    },
  },
};

// ---- liveness and lifecycle: keepalives, waiting managers, per-device ports, drain ----

/**
 * The shortest SSH keepalive interval the configuration accepts. A keepalive request queues
 * behind channel data, so on a busy or slow link shorter intervals cut live connections
 * (ssh2 issue #474). Tests lower it by editing the loaded Config object, never through here.
 */
export const MIN_KEEPALIVE_INTERVAL = 10;

convict.addFormat({
  name: 'keepalive-seconds',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < MIN_KEEPALIVE_INTERVAL) {
      throw new Error(`must be a number of seconds >= ${MIN_KEEPALIVE_INTERVAL} (shorter keepalive intervals cut busy connections)`);
    }
  },
  coerce: (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value),
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

/** "30000-30999" → [30000, 30999]; undefined when malformed. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first < 1 || last > 65535 || first > last) return undefined;
  return [first, last];
}

const keepaliveSchema = (side: string) => ({
  interval: {
    doc: `seconds between SSH keepalive requests to ${side} (>= ${MIN_KEEPALIVE_INTERVAL})`,
    format: 'keepalive-seconds',
    default: 30,
  },
  countMax: {
    doc: `unanswered keepalive requests after which ${side} is declared gone`,
    format: 'positive-int',
    default: 3,
  },
});

const lifecycleSchema = {
  callhome: { keepalive: keepaliveSchema('devices') },
  northbound: {
    keepalive: keepaliveSchema('clients'),
    waitForDevice: {
      doc: 'seconds a client session waits for an offline device to call home, or for a busy held session (0: fail at once)',
      format: 'seconds',
      default: 0,
    },
    portRange: {
      doc: 'ports to give each device without a port: its own listener, e.g. "30000-30999" ("" = off); kept in stateDir',
      format: 'port-range',
      default: '',
    },
  },
  shutdown: {
    grace: {
      doc: 'seconds in-flight RPC replies may take to finish after SIGTERM before everything closes',
      format: 'seconds',
      default: 30,
    },
  },
};

export interface KeepaliveConfig {
  interval: number;
  countMax: number;
}

export interface LifecycleConfig {
  callhome: { keepalive: KeepaliveConfig };
  northbound: { keepalive: KeepaliveConfig; waitForDevice: number; portRange: string };
  shutdown: { grace: number };
}

function mergeSchema(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(from)) {
    const target = into[key];
    if (target && typeof target === 'object' && !('default' in (value as object))) {
      mergeSchema(target as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      into[key] = value;
    }
  }
}
mergeSchema(schema as Record<string, unknown>, lifecycleSchema);

// ---- security review: API secrets, API reads and Host names, SSH identification ----

convict.addFormat({
  name: 'ssh-software-version',
  validate(value: unknown) {
    // RFC 4253 §4.2: printable US-ASCII, no whitespace and no minus sign.
    if (typeof value !== 'string' || !/^[\x21-\x2c\x2e-\x7e]{1,64}$/.test(value)) {
      throw new Error('must be 1..64 printable ASCII characters without spaces or "-" (RFC 4253 §4.2)');
    }
  },
});

const securitySchema = {
  onboarding: {
    secretsDir: {
      doc: 'the only directory whose files an API approval may name as device secrets (never under stateDir); "" = approvals take inline secrets only',
      format: String,
      default: '',
    },
  },
  http: {
    readToken: { doc: 'bearer token GET /api/* requires (the admin token is accepted too); empty: reads are open', format: String, default: '', sensitive: true },
    readTokenFile: { doc: 'file holding the read token (wins over readToken)', format: String, default: '' },
    allowedHosts: {
      doc: 'Host header names /api/* answers besides IP literals and localhost, e.g. "gateway.example.net,*.svc" (DNS rebinding guard)',
      format: Array,
      default: [] as string[],
    },
  },
  ssh: {
    identification: {
      doc: 'software version the gateway announces on both SSH sides (SSH-2.0-<this>)',
      format: 'ssh-software-version',
      default: 'callhome_gateway',
    },
  },
};
mergeSchema(schema as Record<string, unknown>, securitySchema);

export interface SecurityConfig {
  onboarding: { secretsDir: string };
  http: { readToken: string; readTokenFile: string; allowedHosts: string[] };
  ssh: { identification: string };
}

// ---- cluster mode: replicas on Redis (SPEC "Cluster mode") ----

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

const clusterSchema = {
  cluster: {
    redis: {
      url: { doc: 'Redis holding the cluster\'s ownership and shared state, redis://host:port/db or rediss://… ("" = one standalone replica)', format: 'redis-url', default: '' },
      passwordFile: { doc: 'file holding the Redis password (AUTH); "" = none', format: String, default: '' },
    },
    replicaId: { doc: 'this replica\'s name in the cluster (the pod name in Kubernetes); "" = the host name', format: String, default: '' },
    leaseTtl: { doc: 'seconds after which a replica that stopped renewing its lease is no longer any device\'s owner', format: 'positive-int', default: 15 },
    peer: {
      host: { doc: 'address this replica accepts sessions forwarded by other replicas on', format: String, default: '0.0.0.0' },
      port: { doc: 'port for sessions forwarded by other replicas (mutual TLS)', format: 'port', default: 9835 },
      advertise: { doc: 'host:port other replicas dial to reach this one (the pod IP); "" = first non-internal IPv4 + cluster.peer.port', format: String, default: '' },
      caFile: { doc: 'CA that issued every replica\'s peer certificate (PEM); default <stateDir>/tls/ca.crt', format: String, default: '' },
      certFile: { doc: 'this replica\'s peer certificate (PEM, from `callhome-gateway certs peer`); default <stateDir>/tls/peer.crt', format: String, default: '' },
      keyFile: { doc: 'its private key (PEM); default <stateDir>/tls/peer.key', format: String, default: '' },
    },
  },
};
mergeSchema(schema as Record<string, unknown>, clusterSchema);

export interface ClusterConfig {
  cluster: {
    redis: { url: string; passwordFile: string };
    /** Filled in by loadConfig: never "" after loading. */
    replicaId: string;
    leaseTtl: number;
    /** caFile, certFile, keyFile: filled in by loadConfig (under <stateDir>/tls) when left "". */
    peer: { host: string; port: number; advertise: string; caFile: string; certFile: string; keyFile: string };
  };
}

/** Every key's environment variable: the key path upper-cased, dots as underscores. */
function withEnvNames(node: Record<string, unknown>, prefix: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const keyPath = [...prefix, key];
    if (value && typeof value === 'object' && 'default' in value) {
      out[key] = { ...value, env: `CHGW_${keyPath.join('_').toUpperCase()}` };
    } else {
      out[key] = withEnvNames(value as Record<string, unknown>, keyPath);
    }
  }
  return out;
}

export const configSchema = withEnvNames(schema);

export interface AdmissionConfig {
  maxStartups: string;
  perSourceMaxStartups: number;
  failureBackoff: { after: number; baseSeconds: number; maxSeconds: number; exempt: string[] };
}

export type Config = BaseConfig & LifecycleConfig & SecurityConfig & ClusterConfig;

/** Cluster mode is on when a Redis URL is configured. */
export function clusterMode(config: Pick<Config, 'cluster'>): boolean {
  return config.cluster.redis.url !== '';
}

interface BaseConfig {
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  stateDir: string;
  inventory: { file: string };
  users: { file: string };
  callhome: {
    ssh: { host: string; port: number };
    tls: { enabled: boolean; host: string; port: number; certFile: string; keyFile: string; keepaliveInterval: number; drainTimeout: number };
    loginGraceTime: number;
    helloTimeout: number;
    flapping: { window: number; count: number };
  } & AdmissionConfig;
  northbound: { host: string; port: number; hostKeyFile: string; loginGraceTime: number; maxSessionsPerUser: number; maxSessionsPerDevice: number } & AdmissionConfig;
  http: { host: string; port: number; adminToken: string; adminTokenFile: string; requireTokenForReads: boolean };
  limits: { maxDevices: number; maxOpenFiles: number };
  ssh: { legacyAlgorithms: boolean; requireStrictKex: boolean };
  audit: { enabled: boolean; file: string };
  netconf: { maxMessageBytes: number; maxHelloBytes: number };
}

interface SchemaLeaf {
  path: string;
  env: string;
  doc: string;
  default: unknown;
  sensitive: boolean;
}

/** Every key of the schema, in schema order. */
function schemaLeaves(): SchemaLeaf[] {
  const leaves: SchemaLeaf[] = [];
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const [key, value] of Object.entries(node)) {
      const v = value as Record<string, unknown>;
      if (!('env' in v)) {
        walk(v, [...prefix, key]);
        continue;
      }
      leaves.push({ path: [...prefix, key].join('.'), env: v.env as string, doc: v.doc as string, default: v.default, sensitive: v.sensitive === true });
    }
  };
  walk(configSchema, []);
  return leaves;
}

/** Every environment variable the schema reads, for docs and deployment cross-checks. */
export function configEnvNames(): Map<string, string> {
  return new Map(schemaLeaves().map((leaf) => [leaf.path, leaf.env]));
}

/** One entry per key (path, environment variable, default, doc), for `run --help`. */
export function describeConfigKeys(): string[] {
  return schemaLeaves().map(
    (leaf) => `  ${leaf.path} (${leaf.env}, default ${leaf.sensitive ? '(secret)' : JSON.stringify(leaf.default)})\n      ${leaf.doc}`,
  );
}

function parseFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `config file ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Builds the configuration. Throws GatewayError('GW_ERR_CONFIG') naming the key on an
 * unknown key or a bad value; the CLI turns that into exit code 2.
 */
export function loadConfig(files: string[] = [], env: NodeJS.ProcessEnv = process.env): Config {
  const conf = convict(configSchema as convict.Schema<Config>, { env, args: [] });
  for (const file of files) {
    const data = parseFile(file);
    if (data === null || data === undefined) continue;
    if (typeof data !== 'object' || Array.isArray(data)) {
      throw new GatewayError('GW_ERR_CONFIG', `config file ${file} must hold a mapping of keys`);
    }
    try {
      conf.load(data);
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG', `config file ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  for (const [key, name] of configEnvNames()) {
    // convict silently skips an env value it cannot coerce; name it instead.
    const raw = env[name];
    if (raw !== undefined && typeof conf.get(key as never) === 'number' && !/^\s*-?\d+(\.\d+)?\s*$/.test(raw)) {
      throw new GatewayError('GW_ERR_CONFIG', `${name} (${key}): must be a number, got ${JSON.stringify(raw)}`);
    }
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('CHGW_') && ![...configEnvNames().values()].includes(name)) {
      throw new GatewayError('GW_ERR_CONFIG', `${name}: no such configuration key`);
    }
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `invalid configuration: ${(err as Error).message.split('\n')[0]}`);
  }
  const config = conf.getProperties() as Config;
  if (config.northbound.hostKeyFile === '') {
    config.northbound.hostKeyFile = path.join(config.stateDir, 'northbound_host_key');
  }
  const peer = config.cluster.peer;
  if (peer.caFile === '') peer.caFile = path.join(config.stateDir, 'tls', 'ca.crt');
  if (peer.certFile === '') peer.certFile = path.join(config.stateDir, 'tls', 'peer.crt');
  if (peer.keyFile === '') peer.keyFile = path.join(config.stateDir, 'tls', 'peer.key');
  if (config.cluster.replicaId === '') config.cluster.replicaId = hostname();
  return config;
}
