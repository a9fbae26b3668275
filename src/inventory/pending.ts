// Unknown devices that called: what an operator needs to approve one (fingerprint, key
// type, where it came from, how often). Bounded, because strangers can make up keys at will.
export interface PendingDevice {
  fingerprint: string;
  keyType: string;
  remoteAddress: string;
  firstSeen: string;
  lastSeen: string;
  attempts: number;
  /** TLS call home: the unknown certificate's subject and issuer (keyType is "x509"). */
  subject?: string;
  issuer?: string;
}

export class PendingDevices {
  // A Map keeps insertion order; re-inserting on every attempt makes it least-recently-seen first.
  private readonly entries = new Map<string, PendingDevice>();
  constructor(private readonly maxEntries = 1000) {}

  record(fingerprint: string, keyType: string, remoteAddress: string, now = new Date()): PendingDevice {
    const seen = now.toISOString();
    const previous = this.entries.get(fingerprint);
    const entry: PendingDevice = previous
      ? { ...previous, keyType, remoteAddress, lastSeen: seen, attempts: previous.attempts + 1 }
      : { fingerprint, keyType, remoteAddress, firstSeen: seen, lastSeen: seen, attempts: 1 };
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return entry;
  }

  /** An unknown TLS certificate: its SHA-256 fingerprint, subject and issuer. */
  recordCertificate(fingerprint: string, subject: string, issuer: string, remoteAddress: string, now = new Date()): PendingDevice {
    const entry = this.record(fingerprint, 'x509', remoteAddress, now);
    entry.subject = subject;
    entry.issuer = issuer;
    return entry;
  }

  forget(fingerprint: string): boolean {
    return this.entries.delete(fingerprint);
  }

  list(): PendingDevice[] {
    return [...this.entries.values()].reverse();
  }
}
