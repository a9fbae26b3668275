// Guards an ssh2 channel against a peer that ignores the receive window (ssh2 issue #1505:
// ssh2 only drops data when the window is exactly zero and subtracts the length regardless,
// so one oversized packet makes the window negative and every later packet is buffered
// without bound). RFC 4254 §5.2 forbids sending beyond the window; like OpenSSH ("channel:
// rcvd too much data") the whole connection is dropped, and the excess is never buffered.
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.js';

interface RawChannel {
  incoming?: { window: number };
  push(chunk: unknown, encoding?: BufferEncoding): boolean;
  stderr?: { push(chunk: unknown, encoding?: BufferEncoding): boolean };
}

/** Installs the guard on `channel` (in place) and returns it. `onOverrun` is called once. */
export function guardChannelWindow<T extends Duplex | object>(channel: T, onOverrun: (reason: GatewayError) => void): T {
  const c = channel as unknown as RawChannel;
  if (!c.incoming || typeof c.push !== 'function') return channel;
  let tripped = false;
  const wrap = (target: { push(chunk: unknown, encoding?: BufferEncoding): boolean }) => {
    const push = target.push;
    target.push = function guardedPush(chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk !== null && c.incoming!.window < 0) {
        if (!tripped) {
          tripped = true;
          onOverrun(new GatewayError('GW_ERR_PROTOCOL', `peer sent ${-c.incoming!.window} bytes beyond the channel window`));
        }
        return false; // dropped, never buffered
      }
      return push.call(this, chunk, encoding);
    };
  };
  wrap(c);
  if (c.stderr && typeof c.stderr.push === 'function') wrap(c.stderr);
  return channel;
}
