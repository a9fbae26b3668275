// A client session on a device that has one NETCONF session (TLS, or an SSH device in the
// single mode): instead of a new channel on the device, the client is lent the held session
// (device/held/session.ts), waits for it, or gets a clean "busy" failure. The client's
// channel is seen through an RpcFilter (read-only users, size limits, counts for the API).
import type { GatewayError } from '../errors.js';
import { FilteredChannel } from '../splice/filtered-channel.js';
import type { ClientSession, SessionResult } from './client.js';
import type { HeldSession } from './held/session.js';

export async function serveHeldSession(held: HeldSession, client: ClientSession): Promise<SessionResult> {
  const filter = client.filter(true)!;
  const logDenied = filter.onDenied;
  // No meter sees a lent session's RPCs, so a refused one is audited here.
  filter.onDenied = (d) => {
    logDenied?.(d);
    client.rpc(d.operation, d.messageId, 'access-denied', 0);
  };
  const view = new FilteredChannel(client.channel, filter);
  let ended: GatewayError | undefined; // set when an operator ends the session
  // Counted as active from the moment the session is lent, not while waiting.
  const onLent = () =>
    client.started(
      'held',
      () => ({ bytesToDevice: view.bytesToDevice, bytesToClient: view.bytesToClient, rpcs: filter.rpcs, denied: filter.denied }),
      (reason) => {
        ended = reason;
        // The held session sees the close, releases what the client left (locks) and lends again.
        const { channel } = client;
        if (channel.stderr.writable) channel.stderr.write(`callhome-gateway: ${reason.message}\n`);
        channel.exit(1);
        channel.close();
      },
    );
  const r = await held.serve(view, onLent);
  if (r.result === 'busy' || r.result === 'unavailable') return { kind: 'refused', result: 'device_unavailable', reason: `device ${client.deviceId}: ${r.reason}` };
  return { kind: 'ended', reason: ended?.code ?? 'client_closed', message: r.reason };
}
