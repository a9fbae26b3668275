// The writing end of one splice direction. ssh2 never calls back a write into a channel
// that closes while the write waits for window (ssh2 #1508), and a pipeline whose
// destination closes destroys its source too: either way, a device that closes right
// after a large reply would cut the other direction short while it is still delivering to
// a slow client. This wrapper keeps one write in flight, settles it when the channel
// closes, and after a close accepts (and drops) what is still meant for the gone side, so
// the other direction finishes on its own; the splice's drain deadline bounds the rest.
import { Writable, type Duplex } from 'node:stream';

export function deliverTo(channel: Duplex, options: { beforeEnd?: () => Promise<void> } = {}): Writable {
  let gone = channel.destroyed || (channel as Duplex & { closed?: boolean }).closed === true;
  let inFlight: ((err?: Error | null) => void) | undefined;
  let finishing: (() => void) | undefined;
  const onClose = () => {
    gone = true;
    const cb = inFlight;
    inFlight = undefined;
    cb?.();
    finishing?.();
  };
  channel.once('close', onClose);
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      if (gone) {
        cb();
        return;
      }
      inFlight = cb;
      channel.write(chunk, (err?: Error | null) => {
        if (inFlight !== cb) return;
        inFlight = undefined;
        cb(err ?? null);
      });
    },
    final(cb) {
      const end = () => {
        if (gone) {
          cb();
          return;
        }
        finishing = () => {
          finishing = undefined;
          cb();
        };
        channel.once('finish', () => finishing?.());
        channel.end();
      };
      if (options.beforeEnd && !gone) options.beforeEnd().then(end, end);
      else end();
    },
    destroy(err, cb) {
      channel.off('close', onClose);
      cb(err);
    },
  });
}
