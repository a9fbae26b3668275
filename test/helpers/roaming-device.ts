// A persistent call-home device with several endpoints, as RFC 8071 devices are configured
// (ietf-netconf-server: a list of endpoints, tried in turn): when a connection ends, for any
// reason, it waits `pauseMs` and dials the next endpoint. With one endpoint (an HAProxy
// address) it is a plain persistent device.
import { setTimeout as abortableSleep } from 'node:timers/promises';
import type { CallHomeDevice, DeviceConnection } from '../e2e/peers/device.js';

export interface Endpoint {
  host: string;
  port: number;
}

export class RoamingDialer {
  /** Endpoints dialled so far, in order. */
  readonly dialled: Endpoint[] = [];
  current: DeviceConnection | undefined;
  private readonly abort = new AbortController();
  private readonly loop: Promise<void>;

  constructor(
    readonly device: CallHomeDevice,
    endpoints: Endpoint[],
    { pauseMs = 300, start = 0 }: { pauseMs?: number; start?: number } = {},
  ) {
    let next = start;
    this.loop = (async () => {
      while (!this.abort.signal.aborted) {
        const at = endpoints[next++ % endpoints.length]!;
        this.dialled.push(at);
        this.current = device.callHome(at.host, at.port);
        await this.current.exited;
        if (this.abort.signal.aborted) break;
        await abortableSleep(pauseMs, undefined, { signal: this.abort.signal }).catch(() => {});
      }
    })();
  }

  /** Ends the loop and every connection of the device. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.device.stop();
    await this.loop;
  }
}
