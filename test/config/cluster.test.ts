// The cluster.* keys: a Redis URL is checked at start-up (scheme, no password in it), the
// peer certificate files and the replica id get their defaults, and an unreadable Redis
// password file is a one-line configuration error, never a connection attempt without it.
import test from 'ava';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { ClusterRedis } from '../../src/cluster/redis.js';
import { loadConfig } from '../../src/config/load.js';
import { clusterMode } from '../../src/config/schema.js';
import { configError } from '../helpers/config-error.js';
import { createLogger } from '../../src/log.js';

test('standalone by default: no Redis, the host name as replica id, peer files under stateDir/tls', (t) => {
  const stateDir = path.join(tmpdir(), 'chgw-cluster-defaults');
  const config = loadConfig([], { CHGW_STATEDIR: stateDir });
  t.false(clusterMode(config));
  t.is(config.cluster.replicaId, hostname());
  t.is(config.cluster.leaseTtl, 15);
  t.like(config.cluster.peer, {
    host: '0.0.0.0',
    port: 9835,
    caFile: path.join(stateDir, 'tls', 'ca.crt'),
    certFile: path.join(stateDir, 'tls', 'peer.crt'),
    keyFile: path.join(stateDir, 'tls', 'peer.key'),
  });
});

test('redis:// and rediss:// URLs turn cluster mode on', (t) => {
  for (const url of ['redis://redis:6379/0', 'rediss://redis.example.net:6380', 'redis://10.0.0.7:6379/3']) {
    const config = loadConfig([], { CHGW_CLUSTER_REDIS_URL: url, CHGW_CLUSTER_REPLICAID: 'gw-0' });
    t.true(clusterMode(config), url);
    t.is(config.cluster.replicaId, 'gw-0');
  }
});

test('a URL of another scheme, or one carrying a password, is refused naming the key', (t) => {
  for (const url of ['http://redis:6379', 'redis:6379', 'redis://redis:6379/x']) {
    t.regex(
      configError(() => loadConfig([], { CHGW_CLUSTER_REDIS_URL: url })),
      /cluster\.redis\.url/,
      url,
    );
  }
  const leaked = configError(() => loadConfig([], { CHGW_CLUSTER_REDIS_URL: 'redis://default:s3cret@redis:6379/0' }));
  t.regex(leaked, /passwordFile/);
  t.false(leaked.includes('s3cret'), 'the password is not repeated in the error');
});

test('an unreadable cluster.redis.passwordFile is a configuration error naming the file', (t) => {
  const missing = path.join(tmpdir(), 'chgw-no-such-redis-password');
  const config = loadConfig([], { CHGW_CLUSTER_REDIS_URL: 'redis://127.0.0.1:1/0', CHGW_CLUSTER_REDIS_PASSWORDFILE: missing });
  const message = configError(() => new ClusterRedis(config, createLogger('silent')));
  t.true(message.includes(missing), message);
  t.regex(message, /ENOENT/);
});
