// A held session: one NETCONF session with a device (over TLS, one connection is one
// session, RFC 7589) that the gateway opened itself, answering the device's <hello> at once,
// and then lends to one client at a time. The client gets the device's hello replayed, its
// own hello is consumed here, and messages are re-framed between the framing agreed with the
// device and the one agreed with the client (RFC 6242).
//
// This is the adapter: it binds streams and timers to the pure parts, reply routing
// (reply-router.ts), the lend queue (lend-queue.ts), session locks (session-locks.ts) and
// keepalives (keepalive.ts), with the client half in client-side.ts and the writes both ways
// in wire.ts, and reports through HeldEvents (events.ts).
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { GatewayError, describeError, isGatewayError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { FrameScanner, type Framing } from '../../netconf/framing.js';
import { negotiatedFraming, parseHello, type Hello } from '../../netconf/hello.js';
import { baseCapabilities, helloMessage, keepaliveRpc, readMessageHead, rpcMessage } from '../../netconf/vocabulary.js';
import { MessageHeadBuffer, encodeMessage, endOfMessage } from '../../netconf/reframe.js';
import { ClientSide } from './client-side.js';
import { heldMetricsEvents, type HeldEvents } from './events.js';
import { Keepalive } from './keepalive.js';
import { LendQueue } from './lend-queue.js';
import { HelloBuffer, type ClientChannel, type Lend, type ServeResult } from './lend.js';
import type { HeldSessionDeps, HeldSessionOptions } from './options.js';
import { ReplyRouter } from './reply-router.js';
import { SessionLocks, releaseOperations } from './session-locks.js';
import { Wire } from './wire.js';

export type { ServeResult } from './lend.js';

export type { HeldSessionDeps, HeldSessionOptions } from './options.js';

interface Waiter {
  channel: ClientChannel;
  grant: () => void;
  give: (r: ServeResult) => void;
  timer: NodeJS.Timeout | undefined;
}

/** hello: the device's <hello> is awaited; running: it is lent; closed: the device is gone. */
type Phase = 'hello' | 'running' | 'closed';

export class HeldSession {
  private readonly deviceScanner: FrameScanner;
  private phase: Phase = 'hello';
  private readonly deviceHello: HelloBuffer;
  private helloValue: Hello | undefined;
  private helloPayload: Buffer = Buffer.alloc(0);
  private helloResolve: ((h: Hello) => void) | undefined;
  private helloReject: ((e: GatewayError) => void) | undefined;

  private readonly events: HeldEvents;
  private readonly router = new ReplyRouter<Lend>();
  private readonly wire: Wire;
  private readonly clientSide: ClientSide;
  private readonly queue: LendQueue<Waiter>;
  private readonly locks = new SessionLocks<Lend>();
  private readonly keepalive: Keepalive;
  private current: Lend | undefined;
  private deviceHead = new MessageHeadBuffer();
  /** Where the device's current message goes: a lend, nowhere, or not decided yet. */
  private deviceRoute: Lend | 'drop' | 'undecided' = 'undecided';
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
    this.wire = new Wire(device, this.events, this.router);
    this.clientSide = new ClientSide({
      wire: this.wire,
      router: this.router,
      events: this.events,
      log: this.log,
      options,
      capabilities: () => this.capabilities,
      helloPayload: () => this.helloPayload,
      ended: (lend, why) => this.endLend(lend, why),
    });
    this.queue = new LendQueue(options, this.events);
    this.keepalive = new Keepalive(options.keepaliveInterval * 1000, performance.now());
    this.deviceHello = new HelloBuffer('device', options.maxHelloBytes);
    // RFC 6242 §4.1: hellos are always in end-of-message framing.
    this.deviceScanner = new FrameScanner('eom', { data: (seg) => this.onDeviceData(seg), end: () => this.onDeviceEnd() }, { maxMessageBytes: options.maxMessageBytes });
  }

  get capabilities(): readonly string[] {
    return this.helloValue?.capabilities ?? [];
  }
  get framing(): Framing {
    return this.wire.framing;
  }
  /** Clients holding (1) or waiting for (n) this session. */
  get clients(): number {
    return (this.current ? 1 : 0) + this.queue.length;
  }

  /** Sends the gateway's hello, reads the device's; resolves with it. */
  start(): Promise<Hello> {
    // RFC 6241 §8.1: both peers send their hello at once; the device will not wait long for ours.
    this.device.write(encodeMessage('eom', helloMessage(baseCapabilities(this.options.maxBase))));
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
      const reason = isGatewayError(err) && err.code !== 'GW_ERR_FRAMING' ? err : new GatewayError('GW_ERR_FRAMING', `device broke NETCONF framing: ${describeError(err)}`);
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
    if (this.deviceRoute !== 'drop') this.wire.segmentToClient(this.deviceRoute, seg);
  }

  private onDeviceEnd(): void {
    if (this.phase === 'hello') return this.onDeviceHello();
    if (this.deviceRoute === 'undecided') this.decideDeviceMessage();
    const route = this.deviceRoute as Lend | 'drop';
    this.deviceRoute = 'undecided';
    if (route !== 'drop') {
      this.wire.toClient(route, endOfMessage(route.framing));
      this.events.message('to_client');
      this.clientSide.afterReply(route);
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
    this.wire.framing = negotiatedFraming(baseCapabilities(this.options.maxBase), hello.capabilities);
    this.deviceScanner.setFraming(this.wire.framing);
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
    if (route !== 'drop') this.wire.segmentToClient(route, head);
  }

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
    this.events.lent();
    this.current = this.clientSide.lend(channel, resolve);
  }

  private endLend(lend: Lend, why: string): void {
    if (!lend.present) return;
    lend.state = 'ended';
    this.wire.abandon(lend);
    for (const datastore of this.locks.left(lend)) this.releaseLock(datastore);
    if (this.current === lend) this.current = undefined;
    lend.finish({ result: 'served', reason: why });
    this.pump();
  }

  /** Releases a lock a departed client left (see session-locks.ts). */
  private releaseLock(datastore: string): void {
    for (const op of releaseOperations(datastore)) {
      const id = `callhome-gateway-release-${++this.gatewayRequests}`;
      this.wire.sendOwn('gateway', id, op.operation, rpcMessage(id, op.body));
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
      const action = this.keepalive.tick(performance.now(), this.router.outstanding, this.wire.writer !== undefined);
      if (action.kind === 'dead') {
        this.events.keepalive('dead');
        this.deps.onFatal(new GatewayError('GW_ERR_TIMEOUT', `device sent nothing for ${Math.round(action.silentMs / 1000)}s with requests outstanding (keepalive)`));
      } else if (action.kind === 'send') {
        const id = `callhome-gateway-keepalive-${++this.gatewayRequests}`;
        this.wire.sendOwn('keepalive', id, 'get', keepaliveRpc(id));
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
    if (this.current) this.clientSide.fail(this.current, reason);
    for (const w of this.queue.clear()) {
      clearTimeout(w.timer);
      w.give({ result: 'unavailable', reason: `device went away: ${reason.message}` });
    }
  }
}
