// Every use of ssh2 (1.17.0) beyond its public API, in one file: private fields of its
// Client, Connection and channel objects, and modules under ssh2/lib. An ssh2 upgrade is
// checked here (and against patches/, docs/SSH2_PATCH.md); each function says what it reads
// or writes, why the public API does not do, and what happens when the field is gone.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientChannel, Connection, ParsedKey, ServerChannel } from 'ssh2';

/** Whether ssh2's native crypto binding loaded (without it ssh2 runs at about half speed). */
export function sshNativeCryptoAvailable(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    return false;
  }
}

/**
 * Whether patches/ssh2+*.patch is applied (npm ci's postinstall): without it ssh2 writes
 * every SSH packet on its own and allocates a buffer for each, at 1.15-1.4x the CPU per
 * byte (docs/SSH2_PATCH.md). The patch adds `makeSocketWriter` to ssh2/lib/utils.js.
 */
export function sshPacketPathPatched(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return typeof (require('ssh2/lib/utils.js') as { makeSocketWriter?: unknown }).makeSocketWriter === 'function';
  } catch {
    return false;
  }
}

/**
 * The TCP socket under a server Connection (`_sock`): the key by which sockets accepted
 * before ssh2 made a Connection of them are matched to it, and the one thing to destroy
 * when a peer is frozen (Connection.end() only half-closes). Undefined if the field is gone.
 */
export function connectionSocket(conn: Connection): Socket | undefined {
  return (conn as unknown as { _sock?: Socket })._sock;
}

/**
 * Whether the key exchange of a Client or server Connection ran in strict mode
 * (`_protocol._strictMode`, CVE-2023-48795); ssh2 does not report it otherwise. False if
 * the field is gone, which makes the Terrapin check refuse exposed algorithms.
 */
export function strictKexNegotiated(peer: unknown): boolean {
  return (peer as { _protocol?: { _strictMode?: boolean } })._protocol?._strictMode === true;
}

/**
 * Replaces the host keys a server Connection signs with (`_protocol._hostKeys`, a table by
 * algorithm name), so one ssh2 Server can present a different key on each injected socket.
 * False (nothing changed) when the field is gone: the caller must then refuse the connection
 * rather than present the server's template key.
 */
export function setConnectionHostKey(conn: Connection, key: ParsedKey): boolean {
  const proto = (conn as unknown as { _protocol?: { _hostKeys?: unknown } })._protocol;
  if (!proto || typeof proto._hostKeys !== 'object' || proto._hostKeys === null) return false;
  const table: Record<string, ParsedKey> = Object.create(null) as Record<string, ParsedKey>;
  table[key.type] = key;
  // ssh2 signs with one RSA key under each of its algorithm names
  if (key.type === 'ssh-rsa') table['rsa-sha2-256'] = table['rsa-sha2-512'] = key;
  proto._hostKeys = table;
  return true;
}

/**
 * The receive window left on an ssh2 channel (`incoming.window`), negative once a peer sent
 * beyond it (ssh2 #1505); undefined for a stream that is not an ssh2 channel.
 */
export function incomingWindow(channel: object): number | undefined {
  return (channel as { incoming?: { window?: number } }).incoming?.window;
}

/** The send window left on an ssh2 channel (`outgoing.window`); 0 for any other stream. */
export function outgoingWindow(channel: Duplex): number {
  return (channel as Duplex & { outgoing?: { window?: number } }).outgoing?.window ?? 0;
}

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean;

/**
 * Puts `intercept` in front of a channel's push(), which is how ssh2 hands it CHANNEL_DATA
 * (there is no event before the data is buffered). Returns a function restoring the original.
 * Undefined when `target` has no push().
 */
export function interceptPush(target: object, intercept: (push: Push, chunk: unknown, encoding?: BufferEncoding) => boolean): (() => void) | undefined {
  const t = target as { push?: Push };
  const push = t.push;
  if (typeof push !== 'function') return undefined;
  t.push = function interceptedPush(this: unknown, chunk: unknown, encoding?: BufferEncoding): boolean {
    return intercept((c, e) => push.call(this, c, e), chunk, encoding);
  };
  return () => {
    t.push = push;
  };
}

/** The stderr sub-stream of an ssh2 channel, whose data ssh2 also push()es. */
export function channelStderr(channel: object): object | undefined {
  return (channel as { stderr?: object }).stderr;
}

/**
 * Sends exit-status on a server channel below ServerChannel.exit(), which refuses once the
 * stream is no longer writable (at 'prefinish', just before ssh2 sends EOF and close): the
 * same protocol call exit() makes (`_client._protocol.exitStatus(outgoing.id, …)`), only
 * while the channel is open. Does nothing when the fields are gone.
 */
export function sendExitStatusRaw(channel: ServerChannel, code: number): void {
  const c = channel as unknown as { outgoing?: { id: number; state: string }; _client?: { _protocol?: { exitStatus(id: number, code: number): void } } };
  if (c.outgoing?.state === 'open') c._client?._protocol?.exitStatus(c.outgoing.id, code);
}

/**
 * Whether a client channel has its exit status already (`_exit`, set before the 'exit'
 * event, so a listener added late would miss it) or is closed (`closed`).
 */
export function exitStatusSeen(channel: ClientChannel): boolean {
  const c = channel as ClientChannel & { _exit?: { code?: number | null }; closed?: boolean };
  return c._exit?.code !== undefined || c.closed === true;
}
