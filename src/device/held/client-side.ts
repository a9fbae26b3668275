// The client half of a held session: one lent client's channel, its <hello> consumed here,
// its <rpc>s passed to the device, its <close-session> answered locally and its departure.
import { performance } from 'node:perf_hooks';
import { GatewayError, describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { negotiatedFraming, parseHello } from '../../netconf/hello.js';
import { isCloseSession, okReply, readMessageHead } from '../../netconf/vocabulary.js';
import { encodeMessage } from '../../netconf/reframe.js';
import type { HeldEvents } from './events.js';
import { Lend, type ClientChannel, type ServeResult } from './lend.js';
import type { ReplyRouter } from './reply-router.js';
import { targetDatastore } from './session-locks.js';
import type { Wire } from './wire.js';

export interface ClientSideHost {
  readonly wire: Wire;
  readonly router: ReplyRouter<Lend>;
  readonly events: HeldEvents;
  readonly log: Logger;
  readonly options: { maxMessageBytes: number; maxHelloBytes: number; helloTimeout: number };
  /** The device's capabilities, as its hello listed them. */
  capabilities(): readonly string[];
  /** The device's hello as it sent it, replayed to each client. */
  helloPayload(): Buffer;
  /** `lend` left: the session releases its locks and is lent to the next client. */
  ended(lend: Lend, why: string): void;
}

export class ClientSide {
  private count = 0;

  constructor(private readonly host: ClientSideHost) {}

  /** Lends the session to `channel`: a new Lend, wired to the channel's events. */
  lend(channel: ClientChannel, finish: (r: ServeResult) => void): Lend {
    const { options, wire, log } = this.host;
    const lend: Lend = new Lend(++this.count, channel, finish, { data: (seg) => this.onData(lend, seg), end: () => this.onEnd(lend) }, options);
    const helloTimer = setTimeout(() => {
      if (lend.state === 'hello') this.fail(lend, new GatewayError('GW_ERR_TIMEOUT', `no client <hello> within ${options.helloTimeout}s`));
    }, options.helloTimeout * 1000);
    helloTimer.unref();
    // The device's own hello, as it sent it (its session-id and capabilities).
    wire.toClient(lend, encodeMessage('eom', this.host.helloPayload()));
    channel.on('data', (chunk: Buffer) => {
      if (!lend.present) return;
      try {
        lend.scanner.push(chunk);
      } catch (err) {
        this.fail(lend, new GatewayError('GW_ERR_FRAMING', `client broke NETCONF framing: ${describeError(err)}`));
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
      this.host.ended(lend, 'client closed its session');
    });
    channel.on('error', (err: Error) => log.debug({ client: lend.id, err: describeError(err) }, 'client channel error'));
    return lend;
  }

  /** A reply reached `lend`: finish a pending close-session or an EOF'd client once nothing is owed. */
  afterReply(lend: Lend): void {
    if (lend.outstanding > 0) return;
    if (lend.state === 'closing') this.finishClose(lend);
    else if (lend.state === 'eof') this.finishEof(lend);
  }

  /** Ends `lend` with `reason` on its stderr. */
  fail(lend: Lend, reason: GatewayError): void {
    if (!lend.present) return;
    this.host.log.warn({ client: lend.id, reason: reason.code }, `client session on held device session ended: ${reason.message}`);
    lend.channel.stderr?.write(`callhome-gateway: ${reason.message}\n`);
    lend.channel.exit?.(1);
    lend.channel.end();
    this.host.ended(lend, reason.message);
  }

  private onData(lend: Lend, seg: Buffer): void {
    if (lend.state === 'hello') return lend.hello.add(seg);
    if (lend.route === 'undecided') {
      if (lend.head.add(seg)) this.decide(lend);
      return;
    }
    if (lend.route === 'device') this.host.wire.segmentToDevice(lend, seg);
  }

  private onEnd(lend: Lend): void {
    if (lend.state === 'hello') {
      const hello = parseHello(lend.hello.take());
      // RFC 6242 §4.1: what follows is chunked iff both sides of *this* hello pair offer base:1.1.
      lend.framing = negotiatedFraming(this.host.capabilities(), hello.capabilities);
      lend.scanner.setFraming(lend.framing);
      lend.state = 'open';
      this.host.events.message('to_device');
      this.host.log.debug({ client: lend.id, clientFraming: lend.framing, deviceFraming: this.host.wire.framing }, 'client hello consumed');
      return;
    }
    if (lend.route === 'undecided') this.decide(lend);
    if (lend.route === 'device') this.host.wire.endToDevice();
    lend.route = 'undecided';
  }

  /** Reads the head of `lend`'s message and decides where it goes. */
  private decide(lend: Lend): void {
    const head = lend.head.take();
    const info = readMessageHead(head.toString('utf8'));
    if (lend.state === 'closing') {
      lend.route = 'swallow'; // nothing after <close-session> reaches the device
      return;
    }
    if (isCloseSession(info)) {
      // The device session outlives this client: answer locally (RFC 6241 §7.8) once the
      // client's earlier requests are answered, so replies stay in order.
      lend.route = 'swallow';
      lend.state = 'closing';
      lend.closeMessageId = info?.messageId;
      if (lend.outstanding === 0) this.finishClose(lend);
      return;
    }
    if (info?.root !== 'rpc') {
      // A client sends only <rpc>s after its hello (RFC 6241 §4.1). Anything else would draw
      // an answer from the device that no request accounts for, breaking reply routing.
      this.host.log.warn({ client: lend.id, root: info?.root }, 'dropped a client message that is not an <rpc>');
      lend.route = 'swallow';
      return;
    }
    lend.route = 'device';
    const datastore = info.operation === 'lock' || info.operation === 'unlock' ? targetDatastore(head.toString('utf8')) : undefined;
    this.host.router.sent({ owner: lend, messageId: info.messageId, operation: info.operation ?? 'unknown', start: performance.now(), ...(datastore ? { datastore } : {}) });
    lend.outstanding++;
    this.host.wire.segmentToDevice(lend, head);
  }

  private finishClose(lend: Lend): void {
    this.host.wire.toClient(lend, encodeMessage(lend.framing, okReply(lend.closeMessageId)));
    this.host.events.message('to_client');
    lend.channel.exit?.(0);
    lend.channel.end();
    this.host.ended(lend, 'client closed its NETCONF session (<close-session> answered locally)');
  }

  private finishEof(lend: Lend): void {
    lend.channel.exit?.(0);
    lend.channel.end();
    this.host.ended(lend, 'client sent EOF');
  }
}
