// A growing back-off for source addresses that keep failing (RFC 8071 §6 suggests blocking
// sources that fail to authenticate; OpenSSH's PerSourcePenalties is the model). Bounded:
// at most `maxSources` addresses are remembered, least recently failing forgotten first.
import net from 'node:net';

export interface PenaltyPolicy {
  /** Failures in a row before a source is blocked at all. */
  after: number;
  /** First block, seconds; doubled for every further failure. 0 disables penalties. */
  baseSeconds: number;
  maxSeconds: number;
  /** Addresses or CIDR ranges never penalised. */
  exempt: string[];
  maxSources?: number;
}

interface Record {
  failures: number;
  blockedUntil: number;
}

/** IPv4 per address, IPv6 per /64 (one host usually owns a whole /64). */
export function sourceKey(address: string): string {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (net.isIPv4(v4)) return v4;
  if (net.isIPv6(address)) {
    const full = expandV6(address);
    return full.slice(0, 4).join(':') + '::/64';
  }
  return address;
}

function expandV6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => x.toLowerCase());
}

export class SourcePenalties {
  private readonly records = new Map<string, Record>();
  private readonly exempt = new net.BlockList();
  private readonly maxSources: number;

  constructor(
    private readonly policy: PenaltyPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.maxSources = policy.maxSources ?? 65536;
    for (const item of policy.exempt) {
      const [addr, bits] = item.split('/');
      const type = net.isIPv6(addr ?? '') ? 'ipv6' : 'ipv4';
      if (bits !== undefined) this.exempt.addSubnet(addr!, Number(bits), type);
      else this.exempt.addAddress(addr!, type);
    }
  }

  private isExempt(address: string): boolean {
    const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
    if (net.isIPv4(v4)) return this.exempt.check(v4, 'ipv4');
    return net.isIPv6(address) && this.exempt.check(address, 'ipv6');
  }

  blocked(address: string): boolean {
    const r = this.records.get(sourceKey(address));
    return r !== undefined && r.blockedUntil > this.now();
  }

  /** Seconds a source is still blocked for (0 when not blocked). */
  remaining(address: string): number {
    const r = this.records.get(sourceKey(address));
    return r ? Math.max(0, (r.blockedUntil - this.now()) / 1000) : 0;
  }

  fail(address: string): void {
    if (this.policy.baseSeconds <= 0 || this.isExempt(address)) return;
    const key = sourceKey(address);
    const r = this.records.get(key) ?? { failures: 0, blockedUntil: 0 };
    r.failures++;
    if (r.failures >= this.policy.after) {
      const seconds = Math.min(this.policy.maxSeconds, this.policy.baseSeconds * 2 ** (r.failures - this.policy.after));
      r.blockedUntil = this.now() + seconds * 1000;
    }
    this.records.delete(key);
    this.records.set(key, r);
    while (this.records.size > this.maxSources) this.records.delete(this.records.keys().next().value as string);
  }

  forgive(address: string): void {
    this.records.delete(sourceKey(address));
  }

  get size(): number {
    return this.records.size;
  }
}
