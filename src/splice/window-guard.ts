// Guards an ssh2 channel against a peer that ignores the receive window (ssh2 issue #1505:
// ssh2 only drops data when the window is exactly zero and subtracts the length regardless,
// so one oversized packet makes the window negative and every later packet is buffered
// without bound). RFC 4254 §5.2 forbids sending beyond the window; like OpenSSH ("channel:
// rcvd too much data") the whole connection is dropped, and the excess is never buffered.
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.js';
import { channelStderr, incomingWindow, interceptPush } from '../ssh/internals.js';

/** Installs the guard on `channel` (in place) and returns it. `onOverrun` is called once. */
export function guardChannelWindow<T extends Duplex | object>(channel: T, onOverrun: (reason: GatewayError) => void): T {
  if (incomingWindow(channel) === undefined) return channel;
  let tripped = false;
  const guard = (push: (chunk: unknown, encoding?: BufferEncoding) => boolean, chunk: unknown, encoding?: BufferEncoding): boolean => {
    const window = incomingWindow(channel)!;
    if (chunk !== null && window < 0) {
      if (!tripped) {
        tripped = true;
        onOverrun(new GatewayError('GW_ERR_PROTOCOL', `peer sent ${-window} bytes beyond the channel window`));
      }
      return false; // dropped, never buffered
    }
    return push(chunk, encoding);
  };
  if (!interceptPush(channel, guard)) return channel;
  const stderr = channelStderr(channel);
  if (stderr) interceptPush(stderr, guard);
  return channel;
}
