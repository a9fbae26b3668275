// One `netconf` subsystem channel on a device's call-home SSH connection (RFC 6242), guarded
// against a device that overruns the channel window.
import type ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { GatewayError, describeError } from '../errors.js';
import { guardChannelWindow } from '../splice/window-guard.js';

/** Refused channels reject with GW_ERR_CHANNEL_REFUSED; a closed connection with GW_ERR_DEVICE_UNAVAILABLE or the close reason. */
export function requestNetconfChannel(client: ssh2.Client, signal: AbortSignal, onOverrun: (why: GatewayError) => void): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', 'device connection is closed'));
      return;
    }
    // A device that never answers the open must not leave the caller waiting past the close.
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      client.subsys('netconf', (err, channel) => {
        signal.removeEventListener('abort', onAbort);
        if (err) reject(new GatewayError('GW_ERR_CHANNEL_REFUSED', `device refused the netconf channel: ${describeError(err)}`, { cause: err }));
        else resolve(guardChannelWindow(channel, onOverrun));
      });
    } catch (err) {
      reject(new GatewayError('GW_ERR_DEVICE_UNAVAILABLE', `device connection is closed: ${describeError(err)}`));
    }
  });
}
