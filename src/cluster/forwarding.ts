// Forwarded sessions, both ways, for one replica: the peer listener serving sessions other
// replicas forward to the devices held here (peer-server.ts), and the directory through
// which the northbound reaches devices held elsewhere (directory.ts, remote-device.ts).
import type { Config } from '../config.js';
import type { DeviceDirectory } from '../device/directory.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { ClusterDirectory } from './directory.js';
import { PeerServer } from './peer-server.js';
import { loadPeerCredentials } from './peer-tls.js';
import type { ForwardedDeps } from './serve-forwarded.js';
import type { Ownership } from './types.js';

export interface ForwardingDeps extends ForwardedDeps {
  config: Pick<Config, 'cluster' | 'northbound'>;
  logger: Logger;
  ownership: Ownership;
}

export class Forwarding {
  readonly directory: DeviceDirectory;
  private readonly server: PeerServer;
  private readonly stopping = new AbortController();

  constructor(private readonly deps: ForwardingDeps) {
    const credentials = loadPeerCredentials(deps.config);
    this.server = new PeerServer({ ...deps, credentials });
    this.directory = new ClusterDirectory(deps.registry, deps.ownership, {
      replicaId: deps.ownership.replicaId,
      credentials,
      metrics: deps.metrics,
      // The owner may hold a client back while its held session is lent (waitForDevice).
      openTimeout: deps.limits.channelOpenTimeout + deps.config.northbound.waitForDevice,
      signal: this.stopping.signal,
    });
  }

  /** Binds cluster.peer.host/port; resolves with the bound port. */
  listen(): Promise<number> {
    const { host, port } = this.deps.config.cluster.peer;
    return this.server.listen(host, port);
  }

  /** Stops accepting forwarded sessions; those under way end with the gateway's drain. */
  close(): Promise<void> {
    return this.server.close();
  }

  destroy(): void {
    this.stopping.abort(new GatewayError('GW_ERR_SHUTDOWN', 'gateway stopped'));
    this.server.destroy();
  }
}
