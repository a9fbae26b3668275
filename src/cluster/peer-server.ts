// Where a replica accepts the sessions other replicas forward to devices it holds
// (cluster.peer.host/port). Before a session runs, a connection must pass three deadlines and
// limits, like any pre-auth phase here: at most MAX_PENDING connections in the TLS handshake
// or the request at once, the handshake within HANDSHAKE_SECONDS with a peer certificate of
// the gateway's CA (peer-tls.ts), and one request frame within REQUEST_SECONDS.
import net, { type AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { GatewayError, describeError } from '../errors.js';
import { remoteFields, type Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics.js';
import { FrameType } from './peer-frames.js';
import { parseRequest } from './peer-protocol.js';
import { PeerStream } from './peer-stream.js';
import { peerRefusal, serverOptions, type PeerCredentials } from './peer-tls.js';
import { serveForwarded, type ForwardedDeps } from './serve-forwarded.js';

export const HANDSHAKE_SECONDS = 10;
export const REQUEST_SECONDS = 5;
/** Connections in the handshake or the request phase at once; more are dropped at accept. */
export const MAX_PENDING = 64;
/** Connections at once in every phase (sessions included). */
export const MAX_CONNECTIONS = 4096;

export interface PeerServerDeps extends ForwardedDeps {
  credentials: PeerCredentials;
  metrics: GatewayMetrics;
  logger: Logger;
}

export class PeerServer {
  private readonly server: tls.Server;
  private readonly sockets = new Set<net.Socket>();
  private pending = 0;
  /** Ends the pending phase of an accepted TCP socket (once its request is read, or it closes). */
  private readonly pendingEnd = new WeakMap<net.Socket, () => void>();
  private closed = false;

  constructor(private readonly deps: PeerServerDeps) {
    this.server = tls.createServer(serverOptions(deps.credentials, HANDSHAKE_SECONDS), (socket) => this.onSecure(socket));
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.on('connection', (socket: net.Socket) => this.onConnection(socket));
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.refused('unauthorized', socket, `peer connection refused in the TLS handshake: ${describeError(err)}`);
      socket.destroy(); // with a listener here, node leaves that to us (a handshake timeout included)
    });
  }

  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(new GatewayError('GW_ERR_LISTEN', `cannot listen on ${host}:${port} for forwarded sessions (cluster.peer): ${err.code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err: Error) => this.deps.logger.error({ err: describeError(err) }, 'peer listener error'));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  private onConnection(socket: net.Socket): void {
    if (this.closed || this.pending >= MAX_PENDING) {
      if (!this.closed) this.refused('rejected_limit', socket, `more than ${MAX_PENDING} peer connections before their request: dropped`);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.pending++;
    let counted = true;
    const done = () => {
      if (counted) this.pending--;
      counted = false;
    };
    socket.once('close', done);
    this.pendingEnd.set(socket, done);
  }

  private onSecure(socket: TLSSocket): void {
    socket.setNoDelay(true); // small replies must not wait for a delayed ACK
    const refusal = peerRefusal(socket);
    if (refusal) {
      this.refused('unauthorized', socket, `peer connection refused: ${refusal}`);
      socket.destroy();
      return;
    }
    const stream = new PeerStream(socket, FrameType.Open);
    const timer = setTimeout(() => stream.fail(new GatewayError('GW_ERR_TIMEOUT', `no forwarded session request within ${REQUEST_SECONDS}s`)), REQUEST_SECONDS * 1000);
    stream.first.then(
      (payload) => {
        clearTimeout(timer);
        // The TLS socket wraps the TCP socket counted at accept.
        this.pendingEnd.get((socket as TLSSocket & { _parent?: net.Socket })._parent ?? socket)?.();
        void this.serve(payload, stream, socket);
      },
      (err: unknown) => {
        clearTimeout(timer);
        this.refused('protocol_error', socket, `peer connection dropped before its request: ${describeError(err)}`);
      },
    );
  }

  private async serve(payload: Buffer, stream: PeerStream, socket: TLSSocket): Promise<void> {
    const { metrics, logger } = this.deps;
    let request;
    try {
      request = parseRequest(payload);
    } catch (err) {
      this.refused('protocol_error', socket, `peer connection dropped: ${describeError(err)}`);
      stream.destroy();
      return;
    }
    const log = logger.child({ side: 'northbound', device: request.device, user: request.user, session: request.session, replica: request.replica });
    const result = await serveForwarded(request, stream, this.deps, log).catch((err: unknown): { kind: 'refused'; result: 'device_unavailable'; reason: string } => {
      log.error({ err: describeError(err) }, 'forwarded session failed');
      return { kind: 'refused', result: 'device_unavailable', reason: describeError(err) };
    });
    if (result.kind === 'refused') {
      metrics.forwardedSessionsTotal.inc({ direction: 'in', result: result.result });
      log.warn({ result: result.result }, `forwarded session refused: ${result.reason}`);
    } else {
      metrics.forwardedSessionsTotal.inc({ direction: 'in', result: 'ok' });
      log.info({ reason: result.reason }, `forwarded session ended${result.message ? `: ${result.message}` : ''}`);
    }
    stream.close();
  }

  private refused(result: 'unauthorized' | 'protocol_error' | 'rejected_limit', socket: net.Socket, message: string): void {
    this.deps.metrics.forwardedSessionsTotal.inc({ direction: 'in', result });
    this.deps.logger.warn({ side: 'northbound', ...remoteFields(socket.remoteAddress, socket.remotePort), result }, message);
  }

  /** Stops accepting; sessions under way go on (the gateway's drain ends them). */
  close(): Promise<void> {
    this.closed = true;
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  destroy(): void {
    this.closed = true;
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
