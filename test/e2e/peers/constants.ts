// Fixed names shared by the harness and test/peers/install.sh.
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * Per-user scratch area shared by all test processes of one machine (netconfd state, lock).
 * PEERS_STATE_DIR overrides it, giving a separate netconfd (used by the harness self-test).
 */
export const PEERS_STATE_DIR = process.env.PEERS_STATE_DIR || join(tmpdir(), `callhome-peers-${userInfo().uid}`);

/**
 * The Unix socket between netconf-subsystem and the harness's netconfd. Not the default
 * /tmp/ncxserver.sock: that path is machine-wide, and a netconfd someone started by hand
 * (without the harness's modules, log level or access control) may already own it.
 * netconfd --ncxserver-sockname and netconf-subsystem --ncxserver-sockname=830@PATH move it.
 */
export const NCXSERVER_SOCK = join(PEERS_STATE_DIR, 'ncxserver.sock');

/** Device account with a known password, created by test/peers/install.sh. */
export const TEST_USER = 'chgwtest';
export const TEST_PASSWORD = 'chgwtest-pw';

export const BIN = {
  sshd: '/usr/sbin/sshd',
  ssh: '/usr/bin/ssh',
  sshKeygen: '/usr/bin/ssh-keygen',
  sshpass: '/usr/bin/sshpass',
  socat: '/usr/bin/socat',
  netconfd: '/usr/sbin/netconfd',
  netconfSubsystem: '/usr/sbin/netconf-subsystem',
  // TLS call-home tests cross-check certificates and make self-signed ones with it.
  openssl: '/usr/bin/openssl',
  // Debian's interpreter: a python3 earlier on PATH (pyenv, venv) lacks python3-ncclient.
  python3: '/usr/bin/python3',
  // Alert rules evaluated by a real Prometheus against a live gateway (prometheus.test).
  prometheus: '/usr/bin/prometheus',
  promtool: '/usr/bin/promtool',
  // Cluster mode: the replicas' shared Redis, and HAProxy as the L4 load balancer in front.
  redisServer: '/usr/bin/redis-server',
  haproxy: '/usr/sbin/haproxy',
} as const;

export const NC_BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';
export const EOM = ']]>]]>';
