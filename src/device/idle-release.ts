// Periodic devices (the `periodic` connection type of the IETF ietf-netconf-server model):
// such a device calls home now and then, and expects the client to end the connection once
// it has no more use for it. When no client has used the connection for `idleTimeout`
// seconds, the gateway closes a NETCONF session with <close-session> and hangs up.
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { EOM, IDLE_RELEASE_MESSAGE_ID, baseCapabilities, closeSessionRpc, helloMessage } from '../netconf/vocabulary.js';
import type { DeviceSession } from './session.js';

// base:1.0 only, so the one RPC that follows is in end-of-message framing (RFC 6242 §4.1).
const HELLO = helloMessage(baseCapabilities('1.0')) + EOM;
const CLOSE_SESSION = closeSessionRpc(IDLE_RELEASE_MESSAGE_ID) + EOM;
/** How long the device may take to send its hello. */
const ANSWER_MS = 5000;
/**
 * How long to wait for the close-session reply. Some devices drop the session without
 * answering and leave the channel open (netconfd behind netconf-subsystem does), so the
 * wait is short: the hang-up follows either way.
 */
const REPLY_MS = 1000;
const MAX_HELLO_BYTES = 1024 * 1024;

/** Watches one connected periodic device and releases it once idle. */
export function releaseWhenIdle(session: DeviceSession, idleTimeout: number, log: Logger): void {
  let timer: NodeJS.Timeout | undefined;
  let releasing = false;
  const arm = (sessions: number) => {
    clearTimeout(timer);
    timer = undefined;
    if (sessions === 0 && !session.signal.aborted) timer = setTimeout(() => void release(), idleTimeout * 1000);
  };
  const onSessions = (n: number) => arm(n);
  session.on('sessions', onSessions);
  session.signal.addEventListener(
    'abort',
    () => {
      clearTimeout(timer);
      session.off('sessions', onSessions);
    },
    { once: true },
  );
  arm(session.sessions);

  async function release(): Promise<void> {
    if (releasing || session.signal.aborted || session.sessions > 0) return;
    releasing = true;
    const id = session.deviceId;
    try {
      await closeOneSession(session);
    } catch (err) {
      // The hang-up below releases the device all the same.
      log.debug({ device: id, err: describeError(err) }, 'close-session before the idle release failed');
    } finally {
      releasing = false;
    }
    // A client that came in meanwhile keeps the device; the next idle period starts over.
    if (session.sessions > 0 || session.signal.aborted) return;
    session.kill(new GatewayError('GW_ERR_IDLE_RELEASE', `periodic device unused for ${idleTimeout}s: released`));
  }
}

/** Opens a netconf channel, exchanges hellos and sends <close-session>; resolves after the reply. */
async function closeOneSession(session: DeviceSession): Promise<void> {
  const channel = await session.openNetconfChannel();
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let text = '';
      timer = setTimeout(() => reject(new Error(`no hello within ${ANSWER_MS} ms`)), ANSWER_MS);
      let helloDone = false;
      channel.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (!helloDone) {
          const end = text.indexOf(EOM);
          if (end < 0) {
            if (text.length > MAX_HELLO_BYTES) reject(new Error('device hello too large'));
            return;
          }
          helloDone = true;
          text = text.slice(end + EOM.length);
          channel.write(HELLO + CLOSE_SESSION);
          clearTimeout(timer);
          timer = setTimeout(resolve, REPLY_MS);
        }
        if (text.includes(EOM) || text.length > MAX_HELLO_BYTES) resolve();
      });
      channel.once('close', () => (helloDone ? resolve() : reject(new Error('channel closed before the hello'))));
    });
  } finally {
    clearTimeout(timer);
    channel.close();
  }
}
