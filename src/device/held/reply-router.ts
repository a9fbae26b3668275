// Reply routing on one shared device session: RFC 6241 §4.5 has a server answer requests in
// the order it received them, so each <rpc-reply> belongs to the oldest unanswered request,
// whoever sent it (a client, or the gateway itself for keepalives and lock clean-up). Pure:
// told what was sent and what came back, it says where the message goes.
import type { MessageHead } from '../../netconf/vocabulary.js';

export interface Request<C> {
  /** Who gets the reply: a client, or the gateway itself (keepalives, lock clean-up). */
  owner: C | 'keepalive' | 'gateway';
  messageId: string | undefined;
  operation: string;
  /** When it was sent (ms, any clock), for the rpc's duration. */
  start: number;
  /** For <lock>/<unlock>: the datastore, so the gateway knows which locks a client holds. */
  datastore?: string;
}

export type Route<C> =
  /** A reply to a client still here, or a notification for the client holding the session. */
  | { kind: 'client'; client: C; request?: Request<C> }
  /** A reply owed to a client that left: dropped. */
  | { kind: 'stale'; client: C; request: Request<C> }
  /** A reply to the gateway's own keepalive or clean-up request. */
  | { kind: 'gateway'; request: Request<C> & { owner: 'keepalive' | 'gateway' } }
  /** An <rpc-reply> nobody asked for. */
  | { kind: 'unsolicited' }
  /** Not a reply, and nobody holds the session to take it. */
  | { kind: 'nobody' };

export class ReplyRouter<C extends object> {
  readonly #fifo: Request<C>[] = [];

  /** Requests sent and not answered yet. */
  get outstanding(): number {
    return this.#fifo.length;
  }

  sent(request: Request<C>): void {
    this.#fifo.push(request);
  }

  /**
   * Where the device's message with head `head` goes. `holder` is the client that may take
   * notifications (one holding the session, past its hello); `present` says whether a client
   * is still here.
   */
  route(head: MessageHead | undefined, holder: C | undefined, present: (c: C) => boolean): Route<C> {
    if (head?.root !== 'rpc-reply') return holder ? { kind: 'client', client: holder } : { kind: 'nobody' };
    const request = this.#fifo.shift();
    if (!request) return { kind: 'unsolicited' };
    const owner = request.owner;
    if (owner === 'keepalive' || owner === 'gateway') return { kind: 'gateway', request: request as Request<C> & { owner: typeof owner } };
    return present(owner) ? { kind: 'client', client: owner, request } : { kind: 'stale', client: owner, request };
  }

  /** True when no reply is owed to a client that left (so the next client may have the session). */
  owesNoneGone(present: (c: C) => boolean): boolean {
    return this.#fifo.every((r) => typeof r.owner === 'string' || present(r.owner));
  }
}
