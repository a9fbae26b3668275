// How a device's NETCONF sessions are shared with managers. The gateway always keeps the
// device's first NETCONF session open as its own (some stacks, libnetconf2/Netopeer2 among
// them, tie the whole call-home connection to it). Then either each manager gets a further
// `netconf` channel ("multiple"), or, for a device that allows one session only, the held
// first session is lent to one manager at a time ("single"). `sessions: auto` (the
// default) finds out by opening a second channel while the first is held.
import type { ClientChannel } from 'ssh2';
import { describeError } from '../errors.js';
import { parseHello } from '../netconf/hello.js';
import { HelloReader } from '../netconf/hello-reader.js';
import { EOM, PROBE_MESSAGE_ID, baseCapabilities, closeSessionRpc, helloMessage } from '../netconf/vocabulary.js';

export type SessionMode = 'multiple' | 'single';
export type SessionsSetting = 'auto' | SessionMode;

export interface SessionModeDecision {
  mode: SessionMode;
  /** One line for the operator: why this mode (shown as sessionModeReason). */
  reason: string;
}

/** Reasons kept per device across its reconnects (in memory, inventory ids only). */
export class SessionModeMemory {
  private readonly learned = new Map<string, SessionModeDecision>();

  get(id: string): SessionModeDecision | undefined {
    return this.learned.get(id);
  }

  /** From now on `id` gets the single mode, for `reason`. */
  learnSingle(id: string, reason: string): void {
    this.learned.set(id, { mode: 'single', reason });
  }

  /**
   * `id` accepted a second session: its next connections skip the probe (a device that
   * later refuses a client's channel still falls back, and a drop after the probe wins).
   */
  learnMultiple(id: string, reason: string): void {
    if (!this.learned.has(id)) this.learned.set(id, { mode: 'multiple', reason: `${reason} (on an earlier connection)` });
  }

  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.learned.keys()) if (!keep.has(id)) this.learned.delete(id);
  }
}

/** How long after a probe session ends a dropped connection is blamed on that end. */
export const PROBE_DROP_WINDOW_MS = 5000;

// base:1.0 only, so the one RPC that follows is in end-of-message framing (RFC 6242 §4.1).
const PROBE_HELLO_AND_CLOSE = helloMessage(baseCapabilities('1.0')) + EOM + closeSessionRpc(PROBE_MESSAGE_ID) + EOM;
/** How long the device may take to answer the probe's <close-session> before the channel is closed anyway. */
const PROBE_CLOSE_MS = 2000;

export type ProbeResult = { accepted: true; /** resolves once the probe's channel is closed */ ended: Promise<void> } | { accepted: false; reason: string };

/**
 * Opens a second `netconf` channel while the first is held, reads the device's <hello> on
 * it and ends that session politely (<close-session>). A refusal, a channel closed before
 * the hello, or no hello within `helloTimeout` seconds means the device serves one session.
 */
export async function probeSecondSession(open: () => Promise<ClientChannel>, options: { helloTimeout: number; maxHelloBytes: number }): Promise<ProbeResult> {
  let channel: ClientChannel;
  let timer: NodeJS.Timeout | undefined;
  const opening = open();
  try {
    channel = await Promise.race([
      opening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${options.helloTimeout}s`)), options.helloTimeout * 1000);
      }),
    ]);
  } catch (err) {
    opening.then(
      (late) => late.close(),
      () => {},
    ); // a channel that opens after all must not stay open
    return { accepted: false, reason: `device refused a second netconf channel: ${describeError(err)}` };
  } finally {
    clearTimeout(timer);
  }
  const ended = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  const reader = new HelloReader(options.maxHelloBytes);
  let onData: (chunk: Buffer) => void = () => {};
  const hello = await new Promise<string | Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`no <hello> on a second netconf channel within ${options.helloTimeout}s`)), options.helloTimeout * 1000);
    onData = (chunk: Buffer) => {
      try {
        const whole = reader.push(chunk);
        if (whole) resolve(whole.toString('utf8'));
      } catch {
        resolve(new Error(`<hello> on a second channel exceeds ${options.maxHelloBytes} bytes`));
      }
    };
    channel.on('data', onData);
    void ended.then(() => resolve(new Error('device closed a second netconf channel before its <hello>')));
  });
  clearTimeout(timer);
  channel.off('data', onData);
  channel.on('data', () => {}); // the close-session reply is not needed
  if (hello instanceof Error) {
    channel.close();
    return { accepted: false, reason: hello.message };
  }
  try {
    parseHello(hello);
  } catch (err) {
    channel.close();
    return { accepted: false, reason: `no NETCONF <hello> on a second channel: ${describeError(err)}` };
  }
  channel.write(PROBE_HELLO_AND_CLOSE);
  const closeTimer = setTimeout(() => channel.close(), PROBE_CLOSE_MS);
  void ended.then(() => clearTimeout(closeTimer));
  return { accepted: true, ended };
}
