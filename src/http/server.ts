// Health, metrics and the read API. Answers never carry secrets: device entries are
// reduced to their public facts before they are serialised.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeSegment, handleAdmin, type AdminApi } from './admin.js';

export interface DeviceView {
  id: string;
  state: 'connected' | 'disconnected' | 'flapping';
  transport: 'ssh' | 'tls';
  remoteAddress: string | null;
  connectedAt: string | null;
  port: number | null;
  sessions: number;
  capabilities: string[];
  [extra: string]: unknown;
}

export interface HttpApi {
  ready(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Cluster mode: cluster-wide, with each connected device's owner `replica`. */
  devices(): DeviceView[] | Promise<DeviceView[]>;
  /** GET /api/replicas: the live replicas (cluster/types.ts ReplicaInfo). */
  replicas?(): Promise<unknown[]>;
  pending(): unknown[] | Promise<unknown[]>;
  /** Live client sessions (src/northbound/sessions.ts). */
  sessions?(): Array<{ id: string }>;
  /** Onboarding writes and the bearer-token check (src/http/admin.ts). */
  admin?: AdminApi;
  /** Which Host headers /api/* answers (src/http/host-guard.ts); absent: any. */
  hostAllowed?: (host: string | undefined) => boolean;
}

/** Open HTTP connections at once (health probes, scrapes, API calls). */
const HTTP_MAX_CONNECTIONS = 256;

export class HttpServer {
  private readonly server: http.Server;

  constructor(
    private readonly api: HttpApi,
    private readonly logger: Logger,
  ) {
    // Node checks the header and request deadlines only every connectionsCheckingInterval
    // (30 s by default), so a slow-header client could hold a socket three times longer
    // than headersTimeout says; check every second instead.
    this.server = http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err: describeError(err), path: req.url }, 'http handler failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
    this.server.maxHeadersCount = 100;
    // Scrapers, probes and operators need a handful; a flood must not exhaust descriptors
    // that devices and managers need (over the cap, new sockets are closed at accept).
    this.server.maxConnections = HTTP_MAX_CONNECTIONS;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new GatewayError('GW_ERR_LISTEN', `cannot listen for HTTP on ${host}:${port}: ${err.code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  destroy(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      send(res, 400, { error: 'malformed request target' });
      return;
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path.startsWith('/api/') && this.api.hostAllowed && !this.api.hostAllowed(req.headers.host)) {
      send(res, 403, { error: 'unexpected Host header: use an IP address or a name listed in http.allowedHosts' });
      return;
    }
    if (this.api.admin) {
      const answer = await handleAdmin(req, path, this.api.admin);
      if (answer) {
        send(res, answer.status, answer.body, answer.headers);
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { error: `method ${req.method} not allowed` }, { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      send(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const ready = this.api.ready();
      send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    } else if (path === '/metrics') {
      const { contentType, body } = await this.api.metrics();
      res.writeHead(200, { 'Content-Type': contentType });
      res.end(body);
    } else if (path === '/api/devices') {
      send(res, 200, await this.api.devices());
    } else if (path.startsWith('/api/devices/')) {
      const id = decodeSegment(path.slice('/api/devices/'.length));
      if (id === undefined) {
        send(res, 400, { error: 'malformed percent-encoding in the device id' });
        return;
      }
      const device = (await this.api.devices()).find((d) => d.id === id);
      if (device) send(res, 200, device);
      else send(res, 404, { error: `no device ${id}` });
    } else if (this.api.sessions && (path === '/api/sessions' || path.startsWith('/api/sessions/'))) {
      const list = this.api.sessions();
      if (path === '/api/sessions') return send(res, 200, list);
      const id = decodeSegment(path.slice('/api/sessions/'.length));
      if (id === undefined) return send(res, 400, { error: 'malformed percent-encoding in the session id' });
      const one = list.find((s) => s.id === id);
      send(res, one ? 200 : 404, one ?? { error: `no session ${id}` });
    } else if (path === '/api/replicas' && this.api.replicas) {
      try {
        send(res, 200, await this.api.replicas());
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        send(res, 503, { error: err.message });
      }
    } else if (path === '/api/pending') {
      send(res, 200, await this.api.pending());
    } else {
      send(res, 404, { error: 'not found' });
    }
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}
