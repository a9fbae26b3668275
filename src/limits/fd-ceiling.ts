// A ceiling on the sockets the gateway holds, below the process's open-file limit, so that
// a flood makes new connections fail cleanly at accept instead of EMFILE striking anywhere
// (log files, the host key, the API). Shared by every listener of one gateway.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';

/** The soft RLIMIT_NOFILE of this process, from /proc (undefined where unknown). */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/** `configured` 0 means: the open-file limit less a reserve for everything that is not a connection. */
export function resolveFdCeiling(configured: number): number {
  if (configured > 0) return configured;
  const limit = openFileLimit() ?? 1024;
  return Math.max(16, limit - Math.max(64, Math.floor(limit / 10)));
}

export class FdCeiling {
  private open = 0;
  private warnedAt = 0;

  constructor(
    readonly ceiling: number,
    private readonly logger: Logger,
  ) {}

  get inUse(): number {
    return this.open;
  }

  available(): boolean {
    if (this.open < this.ceiling) return true;
    const now = Date.now();
    if (now - this.warnedAt > 10_000) {
      this.warnedAt = now;
      this.logger.warn(
        { reason: 'GW_ERR_REJECTED_LIMIT', openSockets: this.open, ceiling: this.ceiling },
        `open file ceiling reached (${this.ceiling} sockets, limits.maxOpenFiles): refusing new connections`,
      );
    }
    return false;
  }

  /** Counts one socket until it closes; returns the release (idempotent). */
  acquire(_socket: Socket): () => void {
    this.open++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open--;
    };
  }
}
