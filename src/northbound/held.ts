// A client session on a device that has one NETCONF session (TLS call home): instead of a
// new channel on the device, the client is lent the held session (device/held-session.ts),
// waits for it, or gets a clean "busy" failure.
import type { ServerChannel } from 'ssh2';
import type { Logger } from '../log.js';
import type { ClientSessionResult, GatewayMetrics } from '../metrics.js';
import type { HeldSession } from '../device/held-session.js';

export async function serveHeldSession(
  held: HeldSession,
  deviceId: string,
  channel: ServerChannel,
  ctx: { metrics: GatewayMetrics; log: Logger; refuse: (result: ClientSessionResult, reason: string) => void },
): Promise<void> {
  const { metrics, log } = ctx;
  let counted = false;
  // Counted as active from the moment the session is lent, not while waiting.
  const onLent = () => {
    if (counted) return;
    counted = true;
    metrics.clientSessionsTotal.inc({ result: 'ok' });
    metrics.clientSessionsActive.inc();
    log.info('client session started (held device session lent)');
  };
  const r = await held.serve(channel, onLent);
  if (counted) metrics.clientSessionsActive.dec();
  if (r.result === 'busy' || r.result === 'unavailable') {
    ctx.refuse('device_unavailable', `device ${deviceId}: ${r.reason}`);
    return;
  }
  log.info(`client session ended: ${r.reason}`);
}
