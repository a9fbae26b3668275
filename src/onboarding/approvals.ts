// Devices approved (or rejected for good) by an operator through the API, kept in
// <stateDir>/approvals.json (mode 0600: it may hold a password) so they survive restarts.
// The inventory file stays the operator's: approvals are merged into it, and the file wins
// on any conflict (same id, same host key or same port).
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { GatewayError, describeError } from '../errors.js';
import { DEVICE_ID_RE, Inventory, parseInventory } from '../device/inventory.js';
import { PendingDevices, type PendingDevice } from '../device/pending.js';
import type { Logger } from '../log.js';

export interface ApprovalCredentials {
  username: string;
  password?: string;
  passwordFile?: string;
  privateKeyFile?: string;
  passphraseFile?: string;
}

export interface Approval {
  id: string;
  fingerprint: string;
  keyType: string;
  credentials: ApprovalCredentials;
  port?: number;
  approvedAt: string;
}

interface StoreFile {
  approved: Approval[];
  rejected: Array<{ fingerprint: string; rejectedAt: string }>;
}

const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function isFingerprint(text: string): boolean {
  return FINGERPRINT_RE.test(text);
}

/** What an API answer may say about credentials: which kind, never the secret. */
export function describeCredentials(c: ApprovalCredentials): Record<string, string> {
  const out: Record<string, string> = { username: c.username };
  if (c.password !== undefined) out.password = '(set)';
  if (c.passwordFile) out.passwordFile = c.passwordFile;
  if (c.privateKeyFile) out.privateKeyFile = c.privateKeyFile;
  if (c.passphraseFile) out.passphraseFile = c.passphraseFile;
  return out;
}

export class ApprovalStore {
  private data: StoreFile = { approved: [], rejected: [] };
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'approvals.json');
    if (existsSync(this.file)) {
      try {
        const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<StoreFile>;
        this.data = { approved: parsed.approved ?? [], rejected: parsed.rejected ?? [] };
      } catch (err) {
        throw new GatewayError('GW_ERR_CONFIG', `approvals ${this.file} cannot be read: ${describeError(err)}`);
      }
    }
  }

  get approved(): readonly Approval[] {
    return this.data.approved;
  }

  isRejected(fingerprint: string): boolean {
    return this.data.rejected.some((r) => r.fingerprint === fingerprint);
  }

  /** Validates and records an approval (replacing one for the same fingerprint or id). */
  approve(fingerprint: string, keyType: string, body: unknown, now = new Date()): Approval {
    const b = (body ?? {}) as Record<string, unknown>;
    const id = b.id;
    if (typeof id !== 'string' || !DEVICE_ID_RE.test(id)) throw usage('id must be 1..64 characters of [A-Za-z0-9._-]');
    const c = (b.credentials ?? {}) as Record<string, unknown>;
    if (typeof c !== 'object' || Array.isArray(c)) throw usage('credentials must be an object');
    for (const k of Object.keys(c)) {
      if (!['username', 'password', 'passwordFile', 'privateKeyFile', 'passphraseFile'].includes(k)) throw usage(`unknown credentials key "${k}"`);
      if (typeof c[k] !== 'string' || c[k] === '') throw usage(`credentials.${k} must be a non-empty string`);
    }
    if (typeof c.username !== 'string') throw usage('credentials.username is required');
    if (c.password === undefined && c.passwordFile === undefined && c.privateKeyFile === undefined) {
      throw usage('credentials need one of password, passwordFile, privateKeyFile');
    }
    if (c.password !== undefined && c.passwordFile !== undefined) throw usage('give password or passwordFile, not both');
    for (const k of ['passwordFile', 'privateKeyFile', 'passphraseFile'] as const) {
      if (typeof c[k] === 'string' && !path.isAbsolute(c[k] as string)) throw usage(`credentials.${k} must be an absolute path on the gateway's host`);
    }
    let port: number | undefined;
    if (b.port !== undefined && b.port !== null) {
      if (typeof b.port !== 'number' || !Number.isInteger(b.port) || b.port < 1 || b.port > 65535) throw usage('port must be 1..65535');
      port = b.port;
    }
    const approval: Approval = {
      id,
      fingerprint,
      keyType,
      credentials: c as unknown as ApprovalCredentials,
      ...(port !== undefined ? { port } : {}),
      approvedAt: now.toISOString(),
    };
    // Check that the entry makes a valid inventory entry (secret files readable, key parses).
    parseInventory(YAML.stringify({ devices: [toInventoryEntry(approval)] }), `approval of ${fingerprint}`);
    this.data.approved = this.data.approved.filter((a) => a.fingerprint !== fingerprint && a.id !== id).concat(approval);
    this.data.rejected = this.data.rejected.filter((r) => r.fingerprint !== fingerprint);
    this.save();
    return approval;
  }

  /** Rejects a fingerprint for good (and withdraws an approval of it). */
  reject(fingerprint: string, now = new Date()): void {
    this.data.approved = this.data.approved.filter((a) => a.fingerprint !== fingerprint);
    if (!this.isRejected(fingerprint)) this.data.rejected.push({ fingerprint, rejectedAt: now.toISOString() });
    this.save();
  }

  private save(): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 2) + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }
}

function usage(message: string): GatewayError {
  return new GatewayError('GW_ERR_USAGE', message);
}

function toInventoryEntry(a: Approval): Record<string, unknown> {
  return { id: a.id, ssh: { hostKeys: [a.fingerprint] }, credentials: { ...a.credentials }, ...(a.port !== undefined ? { port: a.port } : {}) };
}

/**
 * The inventory file (validated on its own first: a bad file is rejected whole) plus every
 * approval that conflicts with nothing in it. Returns the merged inventory and the ids
 * that came from approvals.
 */
export function loadMergedInventory(file: string, store: ApprovalStore | undefined, logger?: Logger): { inventory: Inventory; approvedIds: Set<string> } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_INVENTORY', `inventory ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const fromFile = parseInventory(text, file);
  const approvedIds = new Set<string>();
  if (!store || store.approved.length === 0) return { inventory: fromFile, approvedIds };
  const doc = (YAML.parse(text) ?? {}) as { devices?: unknown[]; defaults?: unknown };
  const devices = [...(doc.devices ?? [])];
  const ports = new Set([...fromFile.devices.values()].map((d) => d.port).filter((p) => p !== undefined));
  for (const a of store.approved) {
    const clash = fromFile.get(a.id) ? `id ${a.id}` : fromFile.byHostKey(a.fingerprint) ? `host key ${a.fingerprint}` : a.port !== undefined && ports.has(a.port) ? `port ${a.port}` : undefined;
    if (clash) {
      logger?.info({ device: a.id, fingerprint: a.fingerprint }, `approval not merged: the inventory file already has ${clash} (the file wins)`);
      continue;
    }
    devices.push(toInventoryEntry(a));
    approvedIds.add(a.id);
  }
  try {
    return { inventory: parseInventory(YAML.stringify({ ...doc, devices }), file), approvedIds };
  } catch (err) {
    logger?.error({ reason: 'GW_ERR_INVENTORY' }, `approvals not merged: ${describeError(err)}`);
    return { inventory: fromFile, approvedIds: new Set() };
  }
}

/** Pending devices that forget fingerprints an operator rejected for good. */
export class OnboardingPending extends PendingDevices {
  constructor(private readonly isRejected: (fingerprint: string) => boolean) {
    super();
  }

  override record(fingerprint: string, keyType: string, remoteAddress: string, now = new Date()): PendingDevice {
    if (this.isRejected(fingerprint)) {
      return { fingerprint, keyType, remoteAddress, firstSeen: now.toISOString(), lastSeen: now.toISOString(), attempts: 0 };
    }
    return super.record(fingerprint, keyType, remoteAddress, now);
  }

  get(fingerprint: string): PendingDevice | undefined {
    return this.list().find((p) => p.fingerprint === fingerprint);
  }
}
