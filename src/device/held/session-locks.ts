// Locks on a shared device session. On a session of its own, a client's locks end with its
// session and an uncommitted candidate is discarded (RFC 6241 §7.5, §8.3.5.2). A held device
// session outlives the client, so the gateway releases them itself; the device handles
// requests in order, so that happens before any request of the next client. Pure: it keeps
// the book and says what to send.

export class SessionLocks<C> {
  readonly #held = new Map<C, Set<string>>();

  /** The datastores `client` holds locked. */
  of(client: C): string[] {
    return [...(this.#held.get(client) ?? [])];
  }

  /**
   * The device answered `client`'s <lock>/<unlock> on `datastore` with <ok/>. Returns the
   * datastores to release now: a lock granted after its client left.
   */
  granted(client: C, operation: string, datastore: string, present: boolean): string[] {
    if (operation === 'unlock') {
      this.#held.get(client)?.delete(datastore);
      return [];
    }
    if (operation !== 'lock') return [];
    if (!present) return [datastore];
    let set = this.#held.get(client);
    if (!set) this.#held.set(client, (set = new Set()));
    set.add(datastore);
    return [];
  }

  /** `client` left: the datastores to release for it, forgotten here. */
  left(client: C): string[] {
    const held = this.of(client);
    this.#held.delete(client);
    return held;
  }
}

/** The operations that release `datastore` for a departed client, in order. */
export function releaseOperations(datastore: string): { operation: string; body: string }[] {
  const unlock = { operation: 'unlock', body: `<unlock><target><${datastore}/></target></unlock>` };
  return datastore === 'candidate' ? [{ operation: 'discard-changes', body: '<discard-changes/>' }, unlock] : [unlock];
}

/** The datastore named in a <lock>/<unlock>'s <target> (running, candidate, startup, …). */
export function targetDatastore(text: string): string | undefined {
  const m = /<(?:[A-Za-z_][\w.-]*:)?target\b[^>]*>\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z][\w-]*)\b/.exec(text);
  return m?.[1];
}
