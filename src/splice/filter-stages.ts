// The RPC filter (netconf/rpc-filter.ts) as two pipeline stages of a splice: one in each
// direction, sharing the filter. A refusal made while reading the client is pushed into the
// stage toward the client, so it reaches the client between two of the device's messages.
import { Transform } from 'node:stream';
import type { FilterOutput, RpcFilter } from '../netconf/rpc-filter.js';

/** Refusals queued toward a client that does not read beyond this stop reading its requests. */
const MAX_UNREAD_REPLIES = 256 * 1024;

export function filterStages(filter: RpcFilter): { toDevice: Transform; toClient: Transform } {
  const toClient: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      let out: FilterOutput;
      try {
        out = filter.fromDevice(chunk);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (!toDevice.writableEnded) for (const b of out.toDevice) toDevice.push(b);
      for (const b of out.toClient) this.push(b);
      done();
    },
  });
  const toDevice: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      let out: FilterOutput;
      try {
        out = filter.fromClient(chunk);
      } catch (err) {
        done(err as Error);
        return;
      }
      // Once the device side has ended, nothing more reaches the client: refusals are dropped.
      if (!toClient.writableEnded) for (const b of out.toClient) toClient.push(b);
      for (const b of out.toDevice) this.push(b);
      if (toClient.readableLength <= MAX_UNREAD_REPLIES) {
        done();
        return;
      }
      // A client sending refused requests without reading the answers waits for them.
      const check = () => {
        if (toClient.readableLength > MAX_UNREAD_REPLIES && !toClient.destroyed) return;
        toClient.off('data', check);
        toClient.off('close', check);
        done();
      };
      toClient.on('data', check);
      toClient.once('close', check);
    },
  });
  return { toDevice, toClient };
}
