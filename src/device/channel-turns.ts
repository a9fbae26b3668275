// Opens the `netconf` channels of one device connection one after the other: the next
// channel is requested once the previous one has shown its first bytes (the device's
// <hello>), has closed, or a few seconds have passed. libnetconf2 (under Netopeer2) takes
// up one new channel per SSH message it handles: two channel requests that arrive together
// leave the second session unstarted until the next SSH message, up to a keepalive later.
import type { ClientChannel } from 'ssh2';
import { interceptPush } from '../ssh/internals.js';

/** Longest wait for a channel's first bytes before the next channel is requested anyway. */
const FIRST_BYTES_WAIT_MS = 5000;

export class ChannelTurns {
  private last: Promise<void> = Promise.resolve();

  /** Runs `open` once the previous channel's turn is over; its own turn ends at its first bytes. */
  open(open: () => Promise<ClientChannel>): Promise<ClientChannel> {
    const turn = this.last.then(open);
    // A turn lasts at most FIRST_BYTES_WAIT_MS from its start, even if the device never
    // answers the channel request: the next one is not held up for good.
    this.last = this.last.then(
      () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FIRST_BYTES_WAIT_MS);
          void turn
            .then(
              (channel) => firstBytes(channel, FIRST_BYTES_WAIT_MS),
              () => undefined,
            )
            .then(() => {
              clearTimeout(timer);
              resolve();
            });
        }),
    );
    return turn;
  }
}

/**
 * Resolves when the channel receives data, closes, or `ms` pass. It watches ssh2's push()
 * (as splice/window-guard.ts does) instead of listening for 'data', which would start the
 * stream flowing before anyone reads it.
 */
function firstBytes(channel: ClientChannel, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      restore?.();
      channel.off('close', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    const restore = interceptPush(channel, (push, chunk, encoding) => {
      const more = push(chunk, encoding);
      finish();
      return more;
    });
    channel.once('close', finish);
    // ssh2 may have pushed the first bytes in the same read as the channel's confirmation.
    if (channel.readableLength > 0 || channel.destroyed) finish();
  });
}
