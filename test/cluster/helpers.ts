// Two in-process gateways in cluster mode on their own loopback addresses (as pods: 127.0.0.2
// and 127.0.0.3, the same peer port), with one real redis-server, one CA and peer
// certificate, one northbound host key, and the same inventory and users.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initCertificates, issuePeerFiles } from '../../src/tls/certs.js';
import { generateUsableEd25519 } from '../../src/northbound/hostkey.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

export const HOSTS = ['127.0.0.2', '127.0.0.3'] as const;

/** A port free on every one of `hosts` now. */
export async function commonFreePort(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const servers = hosts.map(() => createServer());
    const bound = await Promise.all(
      servers.map(
        (s, i) =>
          new Promise<boolean>((resolve) => {
            s.once('error', () => resolve(false));
            s.listen({ port, host: hosts[i], exclusive: true }, () => resolve(true));
          }),
      ),
    );
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
    if (bound.every(Boolean)) return port;
  }
  throw new Error(`no port free on ${hosts.join(', ')}`);
}

export interface TestCluster {
  redis: TestRedis;
  /** The replicas: [0] gw-a on 127.0.0.2, [1] gw-b on 127.0.0.3. */
  gateways: TestGateway[];
  peerPort: number;
  /** The shared CA's state dir (for issuing more certificates) and the peer files. */
  caState: string;
  peer: { cert: string; key: string; ca: string };
  close(): Promise<void>;
}

export async function startCluster(options: {
  inventory: string;
  users: string;
  /** Extra environment per replica (index 0 = gw-a). */
  env?: Array<Record<string, string>>;
}): Promise<TestCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chgw-cluster-'));
  const redis = await startRedis();
  const caState = path.join(dir, 'ca');
  initCertificates(caState);
  const peer = { cert: path.join(dir, 'peer', 'peer.crt'), key: path.join(dir, 'peer', 'peer.key'), ca: path.join(dir, 'peer', 'ca.crt') };
  issuePeerFiles(caState, peer);
  const hostKeyFile = path.join(dir, 'northbound_host_key');
  writeFileSync(hostKeyFile, generateUsableEd25519('cluster').private, { mode: 0o600 });
  const peerPort = await commonFreePort(HOSTS);
  const gateways: TestGateway[] = [];
  try {
    for (const [i, host] of HOSTS.entries()) {
      gateways.push(
        await startGateway({
          inventory: options.inventory,
          users: options.users,
          env: {
            CHGW_CALLHOME_SSH_HOST: host,
            CHGW_CALLHOME_TLS_HOST: host,
            CHGW_NORTHBOUND_HOST: host,
            CHGW_NORTHBOUND_HOSTKEYFILE: hostKeyFile,
            CHGW_CLUSTER_REDIS_URL: redis.url,
            CHGW_CLUSTER_REPLICAID: `gw-${'ab'[i]}`,
            CHGW_CLUSTER_LEASETTL: '3',
            CHGW_CLUSTER_PEER_HOST: host,
            CHGW_CLUSTER_PEER_PORT: String(peerPort),
            CHGW_CLUSTER_PEER_ADVERTISE: `${host}:${peerPort}`,
            CHGW_CLUSTER_PEER_CAFILE: peer.ca,
            CHGW_CLUSTER_PEER_CERTFILE: peer.cert,
            CHGW_CLUSTER_PEER_KEYFILE: peer.key,
            ...options.env?.[i],
          },
        }),
      );
    }
  } catch (err) {
    await Promise.allSettled(gateways.map((g) => g.close()));
    await redis.close();
    throw err;
  }
  return {
    redis,
    gateways,
    peerPort,
    caState,
    peer,
    async close() {
      // Each gateway's close checks its log lines against docs/LOGS.md: a failure is reported.
      const closed = await Promise.allSettled(gateways.map((g) => g.close()));
      await redis.close();
      const failed = closed.find((c): c is PromiseRejectedResult => c.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
