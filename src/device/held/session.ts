// A held session: one NETCONF session with a device (over TLS, one connection is one
// session, RFC 7589) that the gateway opened itself, answering the device's <hello> at once,
// and then lends to one client at a time. The client gets the device's hello replayed, its
// own hello is consumed here, and messages are re-framed between the framing agreed with the
// device and the one agreed with the client (RFC 6242).
//
// This is the adapter: it binds streams and timers to the pure parts, reply routing
// (reply-router.ts), the lend queue (lend-queue.ts), session locks (session-locks.ts) and
// keepalives (keepalive.ts), and reports through HeldEvents (events.ts).
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { GatewayError, describeError, isGatewayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { GatewayMetrics, Transport } from '../../metrics.js';
import { FrameScanner, type Framing } from '../../netconf/framing.js';
import { negotiatedFraming, parseHello, type Hello } from '../../netconf/hello.js';
import { readMessageHead } from '../../netconf/meter.js';
import { MessageHeadBuffer, encodeMessage, encodeSegment, endOfMessage } from '../../netconf/reframe.js';
import type { HeldSessionMetrics } from '../held-metrics.js';
import { heldMetricsEvents, type HeldEvents } from './events.js';
import { Keepalive, keepaliveRpc } from './keepalive.js';
import { HelloBuffer, Lend, closeSessionOk, gatewayHello, offeredBases, type ClientChannel, type ServeResult } from './lend.js';
import { LendQueue } from './lend-queue.js';
import { ReplyRouter } from './reply-router.js';
import { SessionLocks, releaseOperations, targetDatastore } from './session-locks.js';

export type { ServeResult } from './lend.js';

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

interface Waiter {
  channel: ClientChannel;
  grant: () => void;
  give: (r: ServeResult) => void;
  timer: NodeJS.Timeout | undefined;
}

/** hello: the device's <hello> is awaited; running: it is lent; closed: the device is gone. */
type Phase = 'hello' | 'running' | 'closed';

export class HeldSession {
  private deviceFraming: Framing = 'eom';
  private readonly deviceScanner: FrameScanner;
  private phase: Phase = 'hello';
  private readonly deviceHello: HelloBuffer;
  private helloValue: Hello | undefined;
  private helloPayload: Buffer = Buffer.alloc(0);
  private helloResolve: ((h: Hello) => void) | undefined;
  private helloReject: ((e: GatewayError) => void) | undefined;

  private readonly events: HeldEvents;
  private readonly router = new ReplyRouter<Lend>();
  private readonly queue: LendQueue<Waiter>;
  private readonly locks = new SessionLocks<Lend>();
  private readonly keepalive: Keepalive;
  private current: Lend | undefined;
  private lendCount = 0;
  private deviceHead = new MessageHeadBuffer();
  /** Where the device's current message goes: a lend, nowhere, or not decided yet. */
  private deviceRoute: Lend | 'drop' | 'undecided' = 'undecided';
  /** A client message is being written to the device (keepalives must wait). */
  private deviceWriteOwner: Lend | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  /** Numbers the gateway's own requests (keepalives and clean-up). */
  private gatewayRequests = 0;
  private readonly log: Logger;

  constructor(
    private readonly device: Duplex,
    private readonly deps: HeldSessionDeps,
    private readonly options: HeldSessionOptions,
  ) {
    this.log = deps.logger;
    this.events = heldMetricsEvents(deps.transport, deps.metrics, deps.held);
    this.queue = new LendQueue(options, this.events);
    this.keepalive = new Keepalive(options.keepaliveInterval * 1000, performance.now());
    this.deviceHello = new HelloBuffer('device', options.maxHelloBytes);
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
    return (this.current ? 1 : 0) + this.queue.length;
  }

  /** Sends the gateway's hello, reads the device's; resolves with it. */
  start(): Promise<Hello> {
    // RFC 6241 §8.1: both peers send their hello at once; the device will not wait long for ours.
    this.device.write(encodeMessage('eom', gatewayHello(this.options.maxBase)));
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
    this.keepalive.heard(performance.now());
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
    if (this.phase === 'hello') return this.deviceHello.add(seg);
    if (this.deviceRoute === 'undecided') {
      if (this.deviceHead.add(seg)) this.decideDeviceMessage();
      return;
    }
    this.forwardToClient(this.deviceRoute, seg);
  }

  private onDeviceEnd(): void {
    if (this.phase === 'hello') return this.onDeviceHello();
    if (this.deviceRoute === 'undecided') this.decideDeviceMessage();
    const route = this.deviceRoute as Lend | 'drop';
    this.deviceRoute = 'undecided';
    if (route !== 'drop') {
      this.writeClient(route, endOfMessage(route.framing));
      this.events.message('to_client');
      this.afterReply(route);
    }
    this.pump();
  }

  private onDeviceHello(): void {
    this.helloPayload = this.deviceHello.take();
    let hello: Hello;
    try {
      hello = parseHello(this.helloPayload);
    } catch (err) {
      throw new GatewayError('GW_ERR_NOT_NETCONF', `device did not send a NETCONF <hello>: ${describeError(err)}`);
    }
    this.helloValue = hello;
    this.deviceFraming = negotiatedFraming(offeredBases(this.options.maxBase), hello.capabilities);
    this.deviceScanner.setFraming(this.deviceFraming);
    this.phase = 'running';
    this.startKeepalive();
    this.helloResolve?.(hello);
    this.pump();
  }

  /** Reads the head of the device's message and decides which client (if any) gets it. */
  private decideDeviceMessage(): void {
    const head = this.deviceHead.take();
    const info = readMessageHead(head.toString('utf8'));
    const holder = this.current?.talking ? this.current : undefined;
    const r = this.router.route(info, holder, (l) => l.present);
    let route: Lend | 'drop' = 'drop';
    if (r.kind === 'unsolicited') {
      this.log.warn({ messageId: info?.messageId }, 'device sent an <rpc-reply> nobody asked for; dropped');
    } else if (r.kind !== 'nobody') {
      const owed = 'request' in r ? r.request : undefined;
      if (owed && owed.messageId !== info?.messageId) {
        this.log.debug({ expected: owed.messageId, got: info?.messageId }, 'reply message-id differs from the request it answers by order');
      }
      if (r.kind === 'gateway') {
        if (r.request.owner === 'keepalive') this.events.keepalive('answered');
        else if (info?.result !== 'ok') this.log.warn({ operation: r.request.operation, result: info?.result }, 'clean-up after a departed client failed');
      } else if (owed) {
        r.client.outstanding--;
        if (owed.datastore && info?.result === 'ok') {
          for (const ds of this.locks.granted(r.client, owed.operation, owed.datastore, r.client.present)) this.releaseLock(ds);
        }
        if (r.kind === 'client') {
          route = r.client;
          this.events.rpc(owed.operation, (performance.now() - owed.start) / 1000);
        } else {
          this.events.droppedReply();
          this.log.info({ client: r.client.id, messageId: info?.messageId }, 'dropped a reply owed to a client that left');
        }
      } else {
        route = r.client; // notifications and anything else go to whoever holds the session
      }
    }
    this.deviceRoute = route;
    if (route !== 'drop') this.forwardToClient(route, head);
  }

  private forwardToClient(route: Lend | 'drop', seg: Buffer): void {
    if (route === 'drop' || seg.length === 0) return;
    for (const b of encodeSegment(route.framing, seg)) this.writeClient(route, b);
  }

  private writeClient(lend: Lend, bytes: Buffer): void {
    if (!lend.present) return; // the rest of a message for a client that left is dropped
    this.events.bytes('to_client', bytes.length);
    if (!lend.channel.write(bytes) && !this.device.isPaused()) {
      // The client reads slowly: stop reading the device until it catches up.
      this.device.pause();
      lend.channel.once('drain', () => this.device.resume());
    }
  }

  /** A reply reached `lend`: finish a pending close-session or an EOF'd client once nothing is owed. */
  private afterReply(lend: Lend): void {
    if (lend.outstanding > 0) return;
    if (lend.state === 'closing') this.finishClose(lend);
    else if (lend.state === 'eof') this.finishEof(lend);
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
      const waiter: Waiter = {
        channel,
        give: resolve,
        timer: undefined,
        grant: () => {
          onLent();
          this.grant(channel, resolve);
        },
      };
      const admission = this.queue.enter(waiter, this.current !== undefined, this.drained());
      if (admission.kind === 'grant') return waiter.grant();
      if (admission.kind === 'busy') {
        resolve({ result: 'busy', reason: 'device is busy: its only NETCONF session is lent to another client' });
        return;
      }
      channel.on('error', () => {}); // a waiting client that breaks off only leaves the queue
      const leave = (busy: boolean, r: ServeResult) => {
        if (!this.queue.leave(waiter, busy)) return;
        clearTimeout(waiter.timer);
        resolve(r);
      };
      waiter.timer = setTimeout(
        () => leave(true, { result: 'busy', reason: `device is busy: its only NETCONF session stayed lent to another client for ${admission.seconds}s` }),
        admission.seconds * 1000,
      );
      channel.once('close', () => leave(false, { result: 'served', reason: 'client left while waiting' }));
    });
  }

  private drained(): boolean {
    return this.phase === 'running' && this.deviceRoute === 'undecided' && this.router.owesNoneGone((l) => l.present);
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
    const next = this.queue.next();
    if (!next) return;
    clearTimeout(next.timer);
    next.grant();
  }

  private grant(channel: ClientChannel, resolve: (r: ServeResult) => void): void {
    const lend: Lend = new Lend(
      ++this.lendCount,
      channel,
      resolve,
      { data: (seg) => this.onClientData(lend, seg), end: () => this.onClientEnd(lend) },
      this.options,
    );
    this.current = lend;
    this.events.lent();
    const helloTimer = setTimeout(() => {
      if (lend.state === 'hello') this.failLend(lend, new GatewayError('GW_ERR_TIMEOUT', `no client <hello> within ${this.options.helloTimeout}s`));
    }, this.options.helloTimeout * 1000);
    helloTimer.unref();
    // The device's own hello, as it sent it (its session-id and capabilities).
    this.writeClient(lend, encodeMessage('eom', this.helloPayload));
    channel.on('data', (chunk: Buffer) => {
      if (!lend.present) return;
      try {
        lend.scanner.push(chunk);
      } catch (err) {
        this.failLend(lend, new GatewayError('GW_ERR_FRAMING', `client broke NETCONF framing: ${describeError(err)}`));
      }
    });
    channel.once('end', () => {
      if (lend.state === 'closing' || !lend.present) return;
      lend.state = 'eof';
      // A client that sent EOF after its last <rpc> still gets the replies (as on a direct session).
      if (lend.outstanding === 0) this.finishEof(lend);
    });
    channel.once('close', () => {
      clearTimeout(helloTimer);
      this.endLend(lend, 'client closed its session');
    });
    channel.on('error', (err: Error) => this.log.debug({ client: lend.id, err: describeError(err) }, 'client channel error'));
  }

  private onClientData(lend: Lend, seg: Buffer): void {
    if (lend.state === 'hello') return lend.hello.add(seg);
    if (lend.route === 'undecided') {
      if (lend.head.add(seg)) this.decideClientMessage(lend);
      return;
    }
    if (lend.route === 'device') this.writeDevice(lend, seg);
  }

  private onClientEnd(lend: Lend): void {
    if (lend.state === 'hello') {
      const hello = parseHello(lend.hello.take());
      // RFC 6242 §4.1: what follows is chunked iff both sides of *this* hello pair offer base:1.1.
      lend.framing = negotiatedFraming(this.capabilities, hello.capabilities);
      lend.scanner.setFraming(lend.framing);
      lend.state = 'open';
      this.events.message('to_device');
      this.log.debug({ client: lend.id, clientFraming: lend.framing, deviceFraming: this.deviceFraming }, 'client hello consumed');
      return;
    }
    if (lend.route === 'undecided') this.decideClientMessage(lend);
    if (lend.route === 'device') {
      this.writeDeviceRaw(endOfMessage(this.deviceFraming));
      this.deviceWriteOwner = undefined;
      this.events.message('to_device');
    }
    lend.route = 'undecided';
  }

  private decideClientMessage(lend: Lend): void {
    const head = lend.head.take();
    const info = readMessageHead(head.toString('utf8'));
    if (lend.state === 'closing') {
      lend.route = 'swallow'; // nothing after <close-session> reaches the device
      return;
    }
    if (info?.root === 'rpc' && info.operation === 'close-session') {
      // The device session outlives this client: answer locally (RFC 6241 §7.8) once the
      // client's earlier requests are answered, so replies stay in order.
      lend.route = 'swallow';
      lend.state = 'closing';
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
    this.router.sent({ owner: lend, messageId: info.messageId, operation: info.operation ?? 'unknown', start: performance.now(), ...(datastore ? { datastore } : {}) });
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
    this.events.bytes('to_device', bytes.length);
    return this.device.write(bytes);
  }

  /** Sends a request of the gateway's own, whose reply goes to `owner` (not to a client). */
  private sendOwn(owner: 'keepalive' | 'gateway', messageId: string, operation: string, rpc: string): void {
    this.router.sent({ owner, messageId, operation, start: performance.now() });
    this.writeDeviceRaw(encodeMessage(this.deviceFraming, rpc));
  }

  private finishClose(lend: Lend): void {
    this.writeClient(lend, encodeMessage(lend.framing, closeSessionOk(lend.closeMessageId)));
    this.events.message('to_client');
    lend.channel.exit?.(0);
    lend.channel.end();
    this.endLend(lend, 'client closed its NETCONF session (<close-session> answered locally)');
  }

  private failLend(lend: Lend, reason: GatewayError): void {
    if (!lend.present) return;
    this.log.warn({ client: lend.id, reason: reason.code }, `client session on held device session ended: ${reason.message}`);
    lend.channel.stderr?.write(`callhome-gateway: ${reason.message}\n`);
    lend.channel.exit?.(1);
    lend.channel.end();
    this.endLend(lend, reason.message);
  }

  private endLend(lend: Lend, why: string): void {
    if (!lend.present) return;
    lend.state = 'ended';
    if (this.deviceWriteOwner === lend) {
      // The client left in the middle of a message: end the frame so the device session
      // stays in sync; the device answers (an <rpc-error> at worst) and that reply is dropped.
      this.writeDeviceRaw(endOfMessage(this.deviceFraming));
      this.deviceWriteOwner = undefined;
    }
    this.device.resume();
    for (const datastore of this.locks.left(lend)) this.releaseLock(datastore);
    if (this.current === lend) this.current = undefined;
    lend.finish({ result: 'served', reason: why });
    this.pump();
  }

  /** Releases a lock a departed client left (see session-locks.ts). */
  private releaseLock(datastore: string): void {
    for (const op of releaseOperations(datastore)) {
      const id = `callhome-gateway-release-${++this.gatewayRequests}`;
      this.sendOwn('gateway', id, op.operation, `<rpc message-id="${id}" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">${op.body}</rpc>`);
    }
    this.log.info({ datastore }, 'released a lock left by a departed client');
  }

  // --- liveness ------------------------------------------------------------------------

  /** NETCONF-level keepalives on (a lent session) or off (a device whose clients have channels). */
  setKeepalive(enabled: boolean): void {
    this.keepalive.set(enabled);
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    if (this.phase === 'running') this.startKeepalive();
  }

  private startKeepalive(): void {
    if (!this.keepalive.wanted || this.keepaliveTimer) return;
    this.keepaliveTimer = setInterval(() => {
      if (this.phase !== 'running') return;
      const action = this.keepalive.tick(performance.now(), this.router.outstanding, this.deviceWriteOwner !== undefined);
      if (action.kind === 'dead') {
        this.events.keepalive('dead');
        this.deps.onFatal(new GatewayError('GW_ERR_TIMEOUT', `device sent nothing for ${Math.round(action.silentMs / 1000)}s with requests outstanding (keepalive)`));
      } else if (action.kind === 'send') {
        const id = `callhome-gateway-keepalive-${++this.gatewayRequests}`;
        this.sendOwn('keepalive', id, 'get', keepaliveRpc(id));
        this.events.keepalive('sent');
      }
    }, this.keepalive.intervalMs);
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
    for (const w of this.queue.clear()) {
      clearTimeout(w.timer);
      w.give({ result: 'unavailable', reason: `device went away: ${reason.message}` });
    }
  }
}
