// Audit records: one JSON line per client session start and end and per RPC. Who (user,
// client address), where (device, session ids), what (operation, message-id), how it went
// (ok or the rpc-error tag) and how long; never payloads, never secrets. Written to stdout
// with the logs, or appended to `audit.file`.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { withReasonLabel } from '../log.js';

export interface AuditSession {
  /** The gateway's id for this client session (also in the log lines). */
  session: string;
  user: string;
  /** The manager's address:port (written as remoteAddress and remotePort). */
  client: string;
  device: string;
  /** The device's NETCONF session-id, once its <hello> is seen. */
  deviceSessionId?: string;
}

export type AuditRecord =
  | ({ event: 'session-start' } & AuditSession)
  | ({ event: 'session-end'; reason: string; durationMs: number } & AuditSession)
  | ({ event: 'rpc'; operation: string; messageId: string | null; result: string; durationMs: number } & AuditSession);

/** An operator's write through the API: what, on what, by whom (the admin token's holder), how it went. */
export interface AdminAuditRecord {
  event: 'admin';
  action: 'session-kill' | 'device-disconnect';
  target: string;
  /** Who: there is one admin token, so its holder, told apart by address and client software. */
  actor: 'admin-token' | 'none';
  remoteAddress: string;
  userAgent?: string;
  result: 'ok' | 'not_found' | 'unauthorized';
  /** Refused attempts not recorded since the last record (at most 20 are recorded a minute). */
  suppressed?: number;
}

export class AuditLog {
  private readonly out: NodeJS.WritableStream;
  private readonly file: WriteStream | undefined;
  private counter = 0;

  constructor(options: { file?: string; stream?: NodeJS.WritableStream; enabled?: boolean } = {}) {
    this.enabled = options.enabled !== false;
    if (options.file) {
      mkdirSync(path.dirname(options.file), { recursive: true });
      this.file = createWriteStream(options.file, { flags: 'a', mode: 0o600 });
      this.out = this.file;
    } else {
      this.out = options.stream ?? process.stdout;
    }
  }

  readonly enabled: boolean;

  /** A short id unique within this process, for one client session. */
  nextSessionId(): string {
    this.counter++;
    return `${process.pid.toString(36)}-${Date.now().toString(36)}-${this.counter.toString(36)}`;
  }

  write(record: AuditRecord | AdminAuditRecord): void {
    if (!this.enabled) return;
    // The log lines' envelope (level, msg) and address spelling, so audit records can share
    // stdout with the logs and one pipeline parses both (docs/LOGS.md "Audit records").
    let fields: Record<string, unknown> = record as unknown as Record<string, unknown>;
    if ('client' in record) {
      const { client, ...rest } = record;
      const at = client.lastIndexOf(':');
      fields = { ...rest, remoteAddress: at > 0 ? client.slice(0, at) : client, remotePort: at > 0 ? Number(client.slice(at + 1)) : undefined };
    }
    const line = {
      level: 'info',
      time: new Date().toISOString(),
      name: 'callhome-gateway',
      audit: true,
      ...withReasonLabel(fields),
      msg: `audit ${record.event}`,
    };
    this.out.write(JSON.stringify(line) + '\n');
  }

  close(): Promise<void> {
    const file = this.file;
    return file ? new Promise((resolve) => file.end(() => resolve())) : Promise.resolve();
  }
}
