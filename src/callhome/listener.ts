// The call-home listener: devices open TCP to us (RFC 8071 §4.1 S1/C1) and each accepted
// socket is handed to a DeviceSession, which runs SSH as the client on it (C3).
// The listener owns nothing past the accept; sessions own their lifetimes.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';

export type ListenerState = 'idle' | 'running' | 'closing' | 'closed';

export class CallHomeListener {
  private readonly server: net.Server;
  private stateValue: ListenerState = 'idle';
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly name: string,
    private readonly onSocket: (socket: net.Socket) => void,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
  }

  get state(): ListenerState {
    return this.stateValue;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(new GatewayError('GW_ERR_LISTEN', `cannot listen for ${this.name} call home on ${host}:${port}: ${err.code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.logger.error({ err: describeError(err) }, `${this.name} call-home listener error`));
        this.stateValue = 'running';
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.stateValue !== 'running') {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    try {
      this.onSocket(socket);
    } catch (err) {
      this.logger.error({ err: describeError(err) }, 'call-home connection handler failed');
      socket.destroy();
    }
  }

  /** Sockets accepted and not yet closed (any phase). */
  get openSockets(): number {
    return this.sockets.size;
  }

  /** Stops accepting new connections; established ones are left to their owners. */
  close(): Promise<void> {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return Promise.resolve();
    this.stateValue = 'closing';
    return new Promise((resolve) =>
      this.server.close(() => {
        this.stateValue = 'closed';
        resolve();
      }),
    );
  }

  /** Stops accepting and drops every socket it accepted. */
  destroy(): void {
    void this.close();
    for (const socket of this.sockets) socket.destroy();
  }
}
