// A held session: one NETCONF session with a device (over TLS, one connection is one
// session, RFC 7589) that the gateway opened itself, answering the device's <hello> at once,
// and then lends to one client at a time. The client gets the device's hello replayed, its
// own hello is consumed here, and messages are re-framed between the framing agreed with the
// device and the one agreed with the client (RFC 6242). Replies are routed by the order of
// the requests (RFC 6241 §4.5: a server replies in the order it received the requests), so
// replies owed to a client that left are drained and dropped before the next client.
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { GatewayError, describeError, isGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { GatewayMetrics, type Transport } from '../metrics.js';
import { FrameScanner, type Framing } from '../netconf/framing.js';
import { CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1, negotiatedFraming, parseHello, type Hello } from '../netconf/hello.js';
import { readMessageHead, type MessageHead } from '../netconf/meter.js';
import { MessageHeadBuffer, encodeMessage, encodeSegment, endOfMessage } from '../netconf/reframe.js';
import type { HeldSessionMetrics } from './held-metrics.js';

export interface HeldSessionOptions {
  maxMessageBytes: number;
  maxHelloBytes: number;
  /** Seconds to wait for the device's <hello>, and for a client's. */
  helloTimeout: number;
  /** Seconds a client waits for the session while another client holds it; 0 refuses at once. */
  waitForDevice: number;
  /** Seconds between NETCONF-level keepalives (<get> with an empty filter) while idle; 0 = off. */
  keepaliveInterval: number;
  /** Seconds the device may take to answer what a departed client asked before it is dropped. */
  drainTimeout: number;
  /** Highest base the gateway offers the device: '1.0' keeps end-of-message framing. */
  maxBase: '1.0' | '1.1';
}

export interface HeldSessionDeps {
  transport: Transport;
  metrics: GatewayMetrics;
  held: HeldSessionMetrics;
  logger: Logger;
  /** The device session is unusable (framing broken, keepalive unanswered, drain timeout). */
  onFatal: (reason: GatewayError) => void;
}

export type ServeResult =
  | { result: 'served'; reason: string }
  | { result: 'busy'; reason: string }
  | { result: 'unavailable'; reason: string };

/** A client channel: an ssh2 ServerChannel or any Duplex (tests). */
type ClientChannel = Duplex & { exit?: (code: number) => unknown; stderr?: { write(s: string): unknown } };

class Lend {
  framing: Framing = 'eom';
  helloDone = false;
  active = true;
  closing = false;
  closeMessageId: string | undefined;
  eof = false;
  outstanding = 0;
  /** Datastores this client has locked on the shared session (released when it leaves). */
  readonly locks = new Set<string>();
  head = new MessageHeadBuffer();
  /** Where the current message from this client goes once its head is read. */
  route: 'undecided' | 'device' | 'swallow' = 'undecided';
  helloParts: Buffer[] = [];
  helloBytes = 0;
  scanner!: FrameScanner;
  finish!: (r: ServeResult) => void;
  constructor(
    readonly id: number,
    readonly channel: ClientChannel,
  ) {}
}

interface Outstanding {
  /** Who gets the reply: a client, or the gateway itself (keepalives, lock clean-up). */
  owner: Lend | 'keepalive' | 'gateway';
  messageId: string | undefined;
  operation: string;
  start: number;
  /** For <lock>/<unlock>: the datastore, so the gateway knows which locks a client holds. */
  datastore?: string;
}

interface Waiter {
  channel: ClientChannel;
  grant: () => void;
  give: (r: ServeResult) => void;
  timer: NodeJS.Timeout | undefined;
}

const KEEPALIVE_RPC = (n: number) =>
  `<rpc message-id="callhome-gateway-keepalive-${n}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get><filter type="subtree"/></get></rpc>`;

export class HeldSession {
  private deviceFraming: Framing = 'eom';
  private readonly deviceScanner: FrameScanner;
  private phase: 'hello' | 'running' | 'closed' = 'hello';
  private helloParts: Buffer[] = [];
  private helloBytes = 0;
  private helloValue: Hello | undefined;
  private helloPayload: Buffer = Buffer.alloc(0);
  private helloResolve: ((h: Hello) => void) | undefined;
  private helloReject: ((e: GatewayError) => void) | undefined;

  private readonly fifo: Outstanding[] = [];
  private current: Lend | undefined;
  private readonly waiters: Waiter[] = [];
  private lendCount = 0;
  private deviceHead = new MessageHeadBuffer();
  /** Where the device's current message goes: a lend, nowhere, or not decided yet. */
  private deviceRoute: Lend | 'drop' | 'undecided' = 'undecided';
  /** A client message is being written to the device (keepalives must wait). */
  private deviceWriteOwner: Lend | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveEnabled = true;
  private keepaliveCount = 0;
  private lastDeviceData = performance.now();
  private readonly log: Logger;

  constructor(
    private readonly device: Duplex,
    private readonly deps: HeldSessionDeps,
    private readonly options: HeldSessionOptions,
  ) {
    this.log = deps.logger;
    // RFC 6242 §4.1: hellos are always in end-of-message framing.
    this.deviceScanner = new FrameScanner(
      'eom',
      { data: (seg) => this.onDeviceData(seg), end: () => this.onDeviceEnd() },
      { maxMessageBytes: options.maxMessageBytes },
    );
  }

  get capabilities(): readonly string[] {
    return this.helloValue?.capabilities ?? [];
  }
  get framing(): Framing {
    return this.deviceFraming;
  }
  /** Clients holding (1) or waiting for (n) this session. */
  get clients(): number {
    return (this.current ? 1 : 0) + this.waiters.length;
  }

  /** Sends the gateway's hello, reads the device's; resolves with it. */
  start(): Promise<Hello> {
    const caps = this.options.maxBase === '1.1' ? [CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1] : [CAPABILITY_BASE_1_0];
    const hello =
      '<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>' +
      caps.map((c) => `<capability>${c}</capability>`).join('') +
      '</capabilities></hello>';
    // RFC 6241 §8.1: both peers send their hello at once; the device will not wait long for ours.
    this.device.write(encodeMessage('eom', hello));
    const done = new Promise<Hello>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new GatewayError('GW_ERR_TIMEOUT', `no <hello> from the device within ${this.options.helloTimeout}s`)),
        this.options.helloTimeout * 1000,
      );
      this.helloResolve = (h) => {
        clearTimeout(timer);
        resolve(h);
      };
      this.helloReject = (e) => {
        clearTimeout(timer);
        reject(e);
      };
    });
    this.device.on('data', (chunk: Buffer) => this.onDeviceChunk(chunk));
    return done;
  }

  // --- device side ---------------------------------------------------------------------

  private onDeviceChunk(chunk: Buffer): void {
    this.lastDeviceData = performance.now();
    if (this.phase === 'closed') return;
    try {
      this.deviceScanner.push(chunk);
    } catch (err) {
      const reason =
        isGatewayError(err) && err.code !== 'GW_ERR_FRAMING' ? err : new GatewayError('GW_ERR_FRAMING', `device broke NETCONF framing: ${describeError(err)}`);
      if (this.phase === 'hello') this.helloReject?.(reason);
      else this.deps.onFatal(reason);
    }
  }

  private onDeviceData(seg: Buffer): void {
    if (this.phase === 'hello') {
      this.helloBytes += seg.length;
      if (this.helloBytes > this.options.maxHelloBytes) throw new GatewayError('GW_ERR_NOT_NETCONF', `device <hello> exceeds ${this.options.maxHelloBytes} bytes`);
      this.helloParts.push(Buffer.from(seg));
      return;
    }
    if (this.deviceRoute === 'undecided') {
      if (!this.deviceHead.add(seg)) return;
      this.decideDeviceMessage();
      return;
    }
    this.forwardToClient(this.deviceRoute, seg);
  }

  private onDeviceEnd(): void {
    if (this.phase === 'hello') {
      this.helloPayload = Buffer.concat(this.helloParts, this.helloBytes);
      this.helloParts = [];
      let hello: Hello;
      try {
        hello = parseHello(this.helloPayload);
      } catch (err) {
        throw new GatewayError('GW_ERR_NOT_NETCONF', `device did not send a NETCONF <hello>: ${describeError(err)}`);
      }
      this.helloValue = hello;
      const offered = this.options.maxBase === '1.1' ? [CAPABILITY_BASE_1_0, CAPABILITY_BASE_1_1] : [CAPABILITY_BASE_1_0];
      this.deviceFraming = negotiatedFraming(offered, hello.capabilities);
      this.deviceScanner.setFraming(this.deviceFraming);
      this.phase = 'running';
      this.startKeepalive();
      this.helloResolve?.(hello);
      this.pump();
      return;
    }
    if (this.deviceRoute === 'undecided') this.decideDeviceMessage();
    const route = this.deviceRoute as Lend | 'drop';
    this.deviceRoute = 'undecided';
    if (route !== 'drop') {
      this.writeClient(route, endOfMessage(route.framing));
      this.deps.metrics.netconfMessagesTotal.inc({ direction: 'to_client' });
      this.afterReply(route);
    }
    this.pump();
  }

  /** Reads the head of the device's message and decides which client (if any) gets it. */
  private decideDeviceMessage(): void {
    const head = this.deviceHead.take();
    const info = readMessageHead(head.toString('utf8')) ?? ({ root: 'unknown' } as MessageHead);
    let route: Lend | 'drop' = 'drop';
    if (info.root === 'rpc-reply') {
      const owed = this.fifo.shift();
      if (!owed) {
        this.log.warn({ messageId: info.messageId }, 'device sent an <rpc-reply> nobody asked for; dropped');
      } else {
        if (owed.messageId !== info.messageId) {
          this.log.debug({ expected: owed.messageId, got: info.messageId }, 'reply message-id differs from the request it answers by order');
        }
        if (owed.owner === 'keepalive') {
          this.deps.held.keepalives.inc({ transport: this.deps.transport, result: 'answered' });
        } else if (owed.owner === 'gateway') {
          if (info.result !== 'ok') this.log.warn({ operation: owed.operation, datastore: owed.datastore, result: info.result }, 'clean-up after a departed client failed');
        } else {
          owed.owner.outstanding--;
          if (owed.datastore && info.result === 'ok') this.trackLock(owed.owner, owed.operation, owed.datastore);
          if (owed.owner.active) {
            route = owed.owner;
            this.deps.metrics.rpcDuration.observe(
              { operation: GatewayMetrics.operationLabel(owed.operation) },
              (performance.now() - owed.start) / 1000,
            );
          } else {
            this.deps.held.droppedReplies.inc({ transport: this.deps.transport });
            this.log.info({ client: owed.owner.id, messageId: info.messageId }, 'dropped a reply owed to a client that left');
          }
        }
      }
    } else if (this.current?.active && this.current.helloDone) {
      route = this.current; // notifications and anything else go to whoever holds the session
    }
    this.deviceRoute = route;
    if (route !== 'drop') this.forwardToClient(route, head);
  }

  private forwardToClient(route: Lend | 'drop', seg: Buffer): void {
    if (route === 'drop' || seg.length === 0) return;
    for (const b of encodeSegment(route.framing, seg)) this.writeClient(route, b);
  }

  private writeClient(lend: Lend, bytes: Buffer): void {
    if (!lend.active) return; // the rest of a message for a client that left is dropped
    this.deps.metrics.netconfBytesTotal.inc({ direction: 'to_client' }, bytes.length);
    if (!lend.channel.write(bytes) && !this.device.isPaused()) {
      // The client reads slowly: stop reading the device until it catches up.
      this.device.pause();
      lend.channel.once('drain', () => this.device.resume());
    }
  }

  /** A reply reached `lend`: finish a pending close-session or an EOF'd client once nothing is owed. */
  private afterReply(lend: Lend): void {
    if (lend.outstanding > 0 || !lend.active) return;
    if (lend.closing) this.finishClose(lend);
    else if (lend.eof) this.finishEof(lend);
  }

  private finishEof(lend: Lend): void {
    lend.channel.exit?.(0);
    lend.channel.end();
    this.endLend(lend, 'client sent EOF');
  }

  // --- client side ---------------------------------------------------------------------

  /** Lends the session to `channel` now, after others, or refuses (busy / unavailable). */
  serve(channel: ClientChannel, onLent: () => void = () => {}): Promise<ServeResult> {
    return new Promise<ServeResult>((resolve) => {
      if (this.phase === 'closed') {
        resolve({ result: 'unavailable', reason: 'device connection is closed' });
        return;
      }
      const waiter: Waiter = { channel, give: resolve, timer: undefined, grant: () => {
          onLent();
          this.grant(channel, resolve);
        } };
      const free = !this.current && this.waiters.length === 0;
      if (free && this.drained()) {
        waiter.grant();
        return;
      }
      // Nobody holds the session, it is only draining a departed client's replies: wait for
      // that (bounded by drainTimeout, after which the device is dropped) even without waitForDevice.
      const waitSeconds = free ? Math.max(this.options.waitForDevice, this.options.drainTimeout) : this.options.waitForDevice;
      if (waitSeconds <= 0) {
        this.deps.held.busy.inc({ transport: this.deps.transport });
        resolve({ result: 'busy', reason: 'device is busy: its only NETCONF session is lent to another client' });
        return;
      }
      this.waiters.push(waiter);
      this.deps.held.waiting.inc({ transport: this.deps.transport });
      channel.on('error', () => {}); // a waiting client that breaks off only leaves the queue
      const leave = (r: ServeResult) => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        this.deps.held.waiting.dec({ transport: this.deps.transport });
        clearTimeout(waiter.timer);
        resolve(r);
      };
      waiter.timer = setTimeout(() => {
        this.deps.held.busy.inc({ transport: this.deps.transport });
        leave({ result: 'busy', reason: `device is busy: its only NETCONF session stayed lent to another client for ${waitSeconds}s` });
      }, waitSeconds * 1000);
      channel.once('close', () => leave({ result: 'served', reason: 'client left while waiting' }));
    });
  }

  private drained(): boolean {
    return this.phase === 'running' && this.deviceRoute === 'undecided' && this.fifo.every((o) => typeof o.owner === 'string' || o.owner.active);
  }

  /** Lends the session to the next waiting client once replies owed to departed ones are drained. */
  private pump(): void {
    if (this.current || this.phase !== 'running') return;
    if (!this.drained()) {
      this.drainTimer ??= setTimeout(
        () => this.deps.onFatal(new GatewayError('GW_ERR_TIMEOUT', `device did not answer a departed client's requests within ${this.options.drainTimeout}s`)),
        this.options.drainTimeout * 1000,
      );
      return;
    }
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    const next = this.waiters.shift();
    if (!next) return;
    this.deps.held.waiting.dec({ transport: this.deps.transport });
    clearTimeout(next.timer);
    next.grant();
  }

  private grant(channel: ClientChannel, resolve: (r: ServeResult) => void): void {
    const lend = new Lend(++this.lendCount, channel);
    lend.finish = resolve;
    this.current = lend;
    this.deps.held.lends.inc({ transport: this.deps.transport });
    lend.scanner = new FrameScanner(
      'eom',
      { data: (seg) => this.onClientData(lend, seg), end: () => this.onClientEnd(lend) },
      { maxMessageBytes: this.options.maxMessageBytes },
    );
    const helloTimer = setTimeout(() => {
      if (!lend.helloDone) this.failLend(lend, new GatewayError('GW_ERR_TIMEOUT', `no client <hello> within ${this.options.helloTimeout}s`));
    }, this.options.helloTimeout * 1000);
    helloTimer.unref();
    // The device's own hello, as it sent it (its session-id and capabilities).
    this.writeClient(lend, encodeMessage('eom', this.helloPayload));
    channel.on('data', (chunk: Buffer) => {
      if (!lend.active) return;
      try {
        lend.scanner.push(chunk);
      } catch (err) {
        this.failLend(lend, new GatewayError('GW_ERR_FRAMING', `client broke NETCONF framing: ${describeError(err)}`));
      }
    });
    channel.once('end', () => {
      lend.eof = true;
      // A client that sent EOF after its last <rpc> still gets the replies (as on a direct session).
      if (lend.outstanding === 0 && !lend.closing) this.finishEof(lend);
    });
    channel.once('close', () => {
      clearTimeout(helloTimer);
      this.endLend(lend, 'client closed its session');
    });
    channel.on('error', (err: Error) => this.log.debug({ client: lend.id, err: describeError(err) }, 'client channel error'));
  }

  private onClientData(lend: Lend, seg: Buffer): void {
    if (!lend.helloDone) {
      lend.helloBytes += seg.length;
      if (lend.helloBytes > this.options.maxHelloBytes) throw new GatewayError('GW_ERR_NOT_NETCONF', `client <hello> exceeds ${this.options.maxHelloBytes} bytes`);
      lend.helloParts.push(Buffer.from(seg));
      return;
    }
    if (lend.route === 'undecided') {
      if (lend.head.add(seg)) this.decideClientMessage(lend);
      return;
    }
    if (lend.route === 'device') this.writeDevice(lend, seg);
  }

  private onClientEnd(lend: Lend): void {
    if (!lend.helloDone) {
      const hello = parseHello(Buffer.concat(lend.helloParts, lend.helloBytes));
      lend.helloParts = [];
      // RFC 6242 §4.1: what follows is chunked iff both sides of *this* hello pair offer base:1.1.
      lend.framing = negotiatedFraming(this.capabilities, hello.capabilities);
      lend.scanner.setFraming(lend.framing);
      lend.helloDone = true;
      this.deps.metrics.netconfMessagesTotal.inc({ direction: 'to_device' });
      this.log.debug({ client: lend.id, clientFraming: lend.framing, deviceFraming: this.deviceFraming }, 'client hello consumed');
      return;
    }
    if (lend.route === 'undecided') this.decideClientMessage(lend);
    if (lend.route === 'device') {
      this.writeDeviceRaw(endOfMessage(this.deviceFraming));
      this.deviceWriteOwner = undefined;
      this.deps.metrics.netconfMessagesTotal.inc({ direction: 'to_device' });
    }
    lend.route = 'undecided';
  }

  private decideClientMessage(lend: Lend): void {
    const head = lend.head.take();
    const info = readMessageHead(head.toString('utf8'));
    if (lend.closing) {
      lend.route = 'swallow'; // nothing after <close-session> reaches the device
      return;
    }
    if (info?.root === 'rpc' && info.operation === 'close-session') {
      // The device session outlives this client: answer locally (RFC 6241 §7.8) once the
      // client's earlier requests are answered, so replies stay in order.
      lend.route = 'swallow';
      lend.closing = true;
      lend.closeMessageId = info.messageId;
      if (lend.outstanding === 0) this.finishClose(lend);
      return;
    }
    if (info?.root !== 'rpc') {
      // A client sends only <rpc>s after its hello (RFC 6241 §4.1). Anything else would draw
      // an answer from the device that no request accounts for, breaking reply routing.
      this.log.warn({ client: lend.id, root: info?.root }, 'dropped a client message that is not an <rpc>');
      lend.route = 'swallow';
      return;
    }
    lend.route = 'device';
    this.deviceWriteOwner = lend;
    const datastore = info.operation === 'lock' || info.operation === 'unlock' ? targetDatastore(head.toString('utf8')) : undefined;
    this.fifo.push({ owner: lend, messageId: info.messageId, operation: info.operation ?? 'unknown', start: performance.now(), ...(datastore ? { datastore } : {}) });
    lend.outstanding++;
    this.writeDevice(lend, head);
  }

  private writeDevice(lend: Lend, seg: Buffer): void {
    for (const b of encodeSegment(this.deviceFraming, seg)) {
      if (!this.writeDeviceRaw(b) && !lend.channel.isPaused()) {
        lend.channel.pause();
        this.device.once('drain', () => lend.channel.resume());
      }
    }
  }

  private writeDeviceRaw(bytes: Buffer): boolean {
    this.deps.metrics.netconfBytesTotal.inc({ direction: 'to_device' }, bytes.length);
    return this.device.write(bytes);
  }

  private finishClose(lend: Lend): void {
    const id = lend.closeMessageId;
    const reply =
      `<rpc-reply ${id !== undefined ? `message-id="${escapeAttr(id)}" ` : ''}xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><ok/></rpc-reply>`;
    this.writeClient(lend, encodeMessage(lend.framing, reply));
    this.deps.metrics.netconfMessagesTotal.inc({ direction: 'to_client' });
    lend.channel.exit?.(0);
    lend.channel.end();
    this.endLend(lend, 'client closed its NETCONF session (<close-session> answered locally)');
  }

  private failLend(lend: Lend, reason: GatewayError): void {
    if (!lend.active) return;
    this.log.warn({ client: lend.id, reason: reason.code }, `client session on held device session ended: ${reason.message}`);
    lend.channel.stderr?.write(`callhome-gateway: ${reason.message}\n`);
    lend.channel.exit?.(1);
    lend.channel.end();
    this.endLend(lend, reason.message);
  }

  private endLend(lend: Lend, why: string): void {
    if (!lend.active) return;
    lend.active = false;
    if (this.deviceWriteOwner === lend) {
      // The client left in the middle of a message: end the frame so the device session
      // stays in sync; the device answers (an <rpc-error> at worst) and that reply is dropped.
      this.writeDeviceRaw(endOfMessage(this.deviceFraming));
      this.deviceWriteOwner = undefined;
    }
    this.device.resume();
    for (const datastore of lend.locks) this.releaseLock(datastore);
    lend.locks.clear();
    if (this.current === lend) this.current = undefined;
    lend.finish({ result: 'served', reason: why });
    this.pump();
  }

  // --- locks on a shared session ----------------------------------------------------------

  private trackLock(lend: Lend, operation: string, datastore: string): void {
    if (operation === 'unlock') {
      lend.locks.delete(datastore);
    } else if (lend.active) {
      lend.locks.add(datastore);
    } else {
      this.releaseLock(datastore); // granted after its client left
    }
  }

  /**
   * On a session of its own, a client's locks end with its session and an uncommitted
   * candidate is discarded (RFC 6241 §7.5, §8.3.5.2). The device session outlives the
   * client here, so the gateway does that itself; the device handles requests in order, so
   * this happens before any request of the next client.
   */
  private releaseLock(datastore: string): void {
    const ops = datastore === 'candidate' ? ['<discard-changes/>', '<unlock><target><candidate/></target></unlock>'] : [`<unlock><target><${datastore}/></target></unlock>`];
    for (const op of ops) {
      const id = `callhome-gateway-release-${++this.keepaliveCount}`;
      this.fifo.push({ owner: 'gateway', messageId: id, operation: op.slice(1, op.search(/[\s/>]/)), start: performance.now() });
      this.writeDeviceRaw(encodeMessage(this.deviceFraming, `<rpc message-id="${id}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">${op}</rpc>`));
    }
    this.log.info({ datastore }, 'released a lock left by a departed client');
  }

  // --- liveness ------------------------------------------------------------------------

  /**
   * NETCONF-level keepalives only serve a session that is lent: a device whose clients have
   * channels of their own is watched by SSH keepalives, and an unused <get> every interval
   * on each of thousands of such devices is load for nothing.
   */
  setKeepalive(enabled: boolean): void {
    this.keepaliveEnabled = enabled;
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    if (enabled && this.phase === 'running') this.startKeepalive();
  }

  private startKeepalive(): void {
    const interval = this.options.keepaliveInterval;
    if (interval <= 0 || !this.keepaliveEnabled || this.keepaliveTimer) return;
    // RFC 6520 heartbeats are not offered by OpenSSL; a cheap <get> with an empty filter
    // shows the device's NETCONF server is alive, not only its TCP stack.
    this.keepaliveTimer = setInterval(() => {
      if (this.phase !== 'running') return;
      const silentMs = performance.now() - this.lastDeviceData;
      if (this.fifo.length > 0) {
        if (silentMs > 3 * interval * 1000) {
          this.deps.held.keepalives.inc({ transport: this.deps.transport, result: 'dead' });
          this.deps.onFatal(new GatewayError('GW_ERR_TIMEOUT', `device sent nothing for ${Math.round(silentMs / 1000)}s with requests outstanding (keepalive)`));
        }
        return;
      }
      if (this.deviceWriteOwner) return;
      this.keepaliveCount++;
      this.fifo.push({ owner: 'keepalive', messageId: `callhome-gateway-keepalive-${this.keepaliveCount}`, operation: 'get', start: performance.now() });
      this.writeDeviceRaw(encodeMessage(this.deviceFraming, KEEPALIVE_RPC(this.keepaliveCount)));
      this.deps.held.keepalives.inc({ transport: this.deps.transport, result: 'sent' });
    }, interval * 1000);
    this.keepaliveTimer.unref();
  }

  /** The device connection is gone: every client ends with `reason` on its stderr. */
  close(reason: GatewayError): void {
    if (this.phase === 'closed') return;
    const wasHello = this.phase === 'hello';
    this.phase = 'closed';
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.drainTimer);
    if (wasHello) this.helloReject?.(reason);
    if (this.current) this.failLend(this.current, reason);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      this.deps.held.waiting.dec({ transport: this.deps.transport });
      w.give({ result: 'unavailable', reason: `device went away: ${reason.message}` });
    }
  }
}

/** The datastore named in a <lock>/<unlock>'s <target> (running, candidate, startup, …). */
export function targetDatastore(text: string): string | undefined {
  const m = /<(?:[A-Za-z_][\w.-]*:)?target\b[^>]*>\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z][\w-]*)\b/.exec(text);
  return m?.[1];
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
