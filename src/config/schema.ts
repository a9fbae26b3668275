// The configuration schema (convict, strict) and the Config type derived from it, so the two
// cannot drift: a key, its default, its format and its doc are written once, here. Loading
// (files, environment, aliases, derived defaults) is in load.ts.
import { MIN_KEEPALIVE_INTERVAL } from './formats.js';

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

const keepaliveKeys = (side: string) => ({
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

/** Every key, in the order `run --help` lists them. Environment names are added by load.ts. */
export const schema = {
  log: {
    level: {
      doc: 'log level',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
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
      // TLS call home: the gateway's client certificate.
      certFile: {
        doc: "the gateway's TLS client certificate (PEM); default <stateDir>/tls/gateway.crt, created on first start",
        format: String,
        default: '',
      },
      keyFile: { doc: 'its private key (PEM); default <stateDir>/tls/gateway.key', format: String, default: '' },
    },
    // The one NETCONF session the gateway holds for a TLS device or an SSH device that allows
    // one session, and lends to one client at a time. Old names: callhome.tls.* (load.ts).
    heldSession: {
      keepaliveInterval: {
        doc: 'seconds between NETCONF-level keepalives (<get> with an empty filter) on an idle held device session (TLS, and SSH devices with one session); 0 turns them off',
        format: 'seconds',
        default: 30,
      },
      drainTimeout: {
        doc: "seconds a device with a held session may take to answer a departed client's requests before its connection is dropped",
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
    keepalive: keepaliveKeys('devices'),
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
    keepalive: keepaliveKeys('clients'),
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
  http: {
    host: { doc: 'health, metrics and API address', format: String, default: '0.0.0.0' },
    port: { doc: 'health, metrics and API port', format: 'port', default: 9834 },
    adminToken: { doc: 'bearer token the API write endpoints require (empty: writes refused)', format: String, default: '', sensitive: true },
    adminTokenFile: { doc: 'file holding the admin bearer token (wins over adminToken)', format: String, default: '' },
    requireTokenForReads: { doc: 'also require the token for GET /api/* (never for /metrics, /healthz, /readyz)', format: Boolean, default: false },
    readToken: { doc: 'bearer token GET /api/* requires (the admin token is accepted too); empty: reads are open', format: String, default: '', sensitive: true },
    readTokenFile: { doc: 'file holding the read token (wins over readToken)', format: String, default: '' },
    allowedHosts: {
      doc: 'Host header names /api/* answers besides IP literals and localhost, e.g. "gateway.example.net,*.svc" (DNS rebinding guard)',
      format: Array,
      default: [] as string[],
    },
  },
  limits: {
    maxDevices: { doc: 'devices connected at once; more are refused with a log line', format: 'positive-int', default: 10000 },
    maxOpenFiles: { doc: 'sockets held at once; 0 = the open-file limit less a reserve', format: 'whole-number', default: 0 },
  },
  ssh: {
    legacyAlgorithms: { doc: 'also offer SHA-1 and CBC algorithms (ssh-rsa, hmac-sha1, diffie-hellman-group14-sha1, aes*-cbc) for old peers', format: Boolean, default: false },
    requireStrictKex: {
      doc: 'refuse every SSH peer without strict key exchange (Terrapin); otherwise only peers that negotiated a cipher Terrapin attacks',
      format: Boolean,
      default: false,
    },
    identification: {
      doc: 'software version the gateway announces on both SSH sides (SSH-2.0-<this>)',
      format: 'ssh-software-version',
      default: 'callhome_gateway',
    },
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
  shutdown: {
    grace: {
      doc: 'seconds in-flight RPC replies may take to finish after SIGTERM before everything closes',
      format: 'seconds',
      default: 30,
    },
  },
  onboarding: {
    secretsDir: {
      doc: 'the only directory whose files an API approval may name as device secrets (never under stateDir); "" = approvals take inline secrets only',
      format: String,
      default: '',
    },
  },
  // Cluster mode: replicas on Redis (SPEC "Cluster mode").
  cluster: {
    redis: {
      // Sensitive: a URL typed with a password in it must not be echoed back in the error.
      url: {
        doc: 'Redis holding the cluster\'s ownership and shared state, redis://host:port/db or rediss://… ("" = one standalone replica)',
        format: 'redis-url',
        default: '',
        sensitive: true,
      },
      passwordFile: { doc: 'file holding the Redis password (AUTH); "" = none', format: String, default: '' },
    },
    // loadConfig fills in replicaId (the host name) and the peer files (under <stateDir>/tls) left "".
    replicaId: { doc: 'this replica\'s name in the cluster (the pod name in Kubernetes); "" = the host name', format: String, default: '' },
    leaseTtl: { doc: "seconds after which a replica that stopped renewing its lease is no longer any device's owner", format: 'positive-int', default: 15 },
    peer: {
      host: { doc: 'address this replica accepts sessions forwarded by other replicas on', format: String, default: '0.0.0.0' },
      port: { doc: 'port for sessions forwarded by other replicas (mutual TLS)', format: 'port', default: 9835 },
      advertise: { doc: 'host:port other replicas dial to reach this one (the pod IP); "" = first non-internal IPv4 + cluster.peer.port', format: String, default: '' },
      caFile: { doc: "CA that issued every replica's peer certificate (PEM); default <stateDir>/tls/ca.crt", format: String, default: '' },
      certFile: { doc: "this replica's peer certificate (PEM, from `callhome-gateway certs peer`); default <stateDir>/tls/peer.crt", format: String, default: '' },
      keyFile: { doc: 'its private key (PEM); default <stateDir>/tls/peer.key', format: String, default: '' },
    },
  },
};

/** One key of the schema. */
export interface SchemaLeaf {
  doc: string;
  format: unknown;
  default: unknown;
  sensitive?: boolean;
}

/**
 * The configuration a schema describes: each leaf's value has the type of its default, or
 * of its format when that is a list of choices (log.level).
 */
export type ConfigOf<S> = {
  -readonly [K in keyof S]: S[K] extends SchemaLeaf ? (S[K] extends { format: readonly (infer E extends string)[] } ? E : S[K]['default']) : ConfigOf<S[K]>;
};

export type Config = ConfigOf<typeof schema>;
export type AdmissionConfig = ConfigOf<ReturnType<typeof admissionKeys>>;
export type KeepaliveConfig = ConfigOf<ReturnType<typeof keepaliveKeys>>;

/** Cluster mode is on when a Redis URL is configured. */
export function clusterMode(config: Pick<Config, 'cluster'>): boolean {
  return config.cluster.redis.url !== '';
}
