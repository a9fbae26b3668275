// Admission control for one listener, after OpenSSH's MaxStartups / PerSourceMaxStartups /
// LoginGraceTime / PerSourcePenalties: SSH libraries accept every TCP connection and hold
// it for as long as the peer likes, so an unauthenticated stranger must cost a bounded,
// small amount. One Admission per listener; the listener calls admit(socket) first thing
// after accept and tells the ticket when the peer has authenticated (or failed).
import type { Socket } from 'node:net';
import { sourceKey, SourcePenalties, type PenaltyPolicy } from './penalties.js';
import type { StartupsSpec } from './startups.js';
import type { FdCeiling } from './fd-ceiling.js';

export type RejectReason = 'startups_full' | 'random_drop' | 'per_source' | 'penalty' | 'fd_ceiling';

export interface AdmissionPolicy {
  /** OpenSSH "start:rate:full" for connections not yet authenticated. */
  startups: StartupsSpec;
  /** Unauthenticated connections at once from one source address; 0 = no limit. */
  perSource: number;
  /** Seconds from TCP accept until authenticated; 0 = the caller owns the deadline. */
  graceSeconds: number;
  penalties: PenaltyPolicy;
}

export interface AdmissionHooks {
  /** A connection was refused at accept (already destroyed). */
  rejected?(reason: RejectReason, remoteAddress: string, label: string): void;
  /** The grace deadline passed before authenticated(); the socket is being destroyed. */
  timedOut?(remoteAddress: string): void;
}

export interface AdmissionTicket {
  readonly remoteAddress: string;
  /** The peer proved who it is: it no longer counts as a startup; its source's failures are forgiven. */
  authenticated(): void;
  /** The peer failed in a way that counts against its source (bad handshake, timeout, auth failure). */
  failed(): void;
}

export class Admission {
  private unauthenticated = 0;
  private readonly perSourceCount = new Map<string, number>();
  readonly penalties: SourcePenalties;

  constructor(
    private readonly policy: AdmissionPolicy,
    private readonly hooks: AdmissionHooks = {},
    private readonly fds?: FdCeiling,
    private readonly random: () => number = Math.random,
  ) {
    this.penalties = new SourcePenalties(policy.penalties);
  }

  /** Connections accepted and not yet authenticated (OpenSSH's "startups"). */
  get startups(): number {
    return this.unauthenticated;
  }

  /**
   * Decides on a freshly accepted socket. `label` is passed to the hooks (e.g. the
   * transport, when one Admission guards both call-home listeners). Returns a ticket, or undefined when the socket
   * was refused and destroyed (the hooks have counted and the reason is logged by the caller).
   */
  admit(socket: Socket, label = 'ssh'): AdmissionTicket | undefined {
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    const reason = this.refusal(remoteAddress);
    if (reason) {
      socket.destroy();
      this.hooks.rejected?.(reason, remoteAddress, label);
      return undefined;
    }
    const source = sourceKey(remoteAddress);
    this.unauthenticated++;
    this.perSourceCount.set(source, (this.perSourceCount.get(source) ?? 0) + 1);
    const releaseFd = this.fds?.acquire(socket);
    let counted = true;
    const leaveStartups = () => {
      if (!counted) return;
      counted = false;
      clearTimeout(timer);
      this.unauthenticated--;
      const n = (this.perSourceCount.get(source) ?? 1) - 1;
      if (n <= 0) this.perSourceCount.delete(source);
      else this.perSourceCount.set(source, n);
    };
    let failedOnce = false;
    const ticket: AdmissionTicket = {
      remoteAddress,
      authenticated: () => {
        leaveStartups();
        this.penalties.forgive(remoteAddress);
      },
      failed: () => {
        if (failedOnce) return;
        failedOnce = true;
        this.penalties.fail(remoteAddress);
      },
    };
    const timer =
      this.policy.graceSeconds > 0
        ? setTimeout(() => {
            if (!counted) return;
            ticket.failed();
            this.hooks.timedOut?.(remoteAddress);
            socket.destroy();
          }, this.policy.graceSeconds * 1000)
        : undefined;
    socket.once('close', () => {
      leaveStartups();
      releaseFd?.();
    });
    return ticket;
  }

  private refusal(remoteAddress: string): RejectReason | undefined {
    if (this.fds && !this.fds.available()) return 'fd_ceiling';
    if (this.penalties.blocked(remoteAddress)) return 'penalty';
    const { start, rate, full } = this.policy.startups;
    if (this.unauthenticated >= full) return 'startups_full';
    if (this.policy.perSource > 0 && (this.perSourceCount.get(sourceKey(remoteAddress)) ?? 0) >= this.policy.perSource) return 'per_source';
    if (this.unauthenticated >= start) {
      // OpenSSH's early drop: rate% at `start`, rising linearly to 100% at `full`.
      const p = full > start ? rate + ((100 - rate) * (this.unauthenticated - start)) / (full - start) : 100;
      if (this.random() * 100 < p) return 'random_drop';
    }
    return undefined;
  }
}
