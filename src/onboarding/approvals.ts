// Devices approved (or rejected for good) by an operator through the API, kept in
// <stateDir>/approvals.json (mode 0600: it may hold a password) so they survive restarts.
// The inventory file stays the operator's: approvals are merged into it, and the file wins
// on any conflict (same id, same host key or same port).
// Secret files named through the API must lie under onboarding.secretsDir (checked on the
// real path, symlinks followed) and never under stateDir: an API caller must not be able to
// make the gateway read its own keys and send them to a device as a password.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { GatewayError, describeError } from '../errors.js';
import { DEVICE_ID_RE, Inventory, parseInventory } from '../inventory/inventory.js';
import { PendingDevices, type PendingDevice } from '../inventory/pending.js';
import type { Logger } from '../log.js';
import { writeDurably } from '../state/durable-file.js';

export const APPROVALS_FILE = 'approvals.json';
/** Fingerprints rejected for good that are kept; the oldest rejection goes first. */
export const MAX_REJECTED = 10_000;
const SECRET_FILE_KEYS = ['passwordFile', 'privateKeyFile', 'passphraseFile'] as const;

export interface ApprovalStoreOptions {
  /** onboarding.secretsDir: the only directory secret files named through the API may be in ('' = none). */
  secretsDir?: string;
  maxRejected?: number;
  /** false: no approvals.json (cluster mode: the approvals live in Redis, src/cluster/shared-approvals.ts). */
  file?: boolean;
}

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

export interface ApprovalState {
  approved: Approval[];
  rejected: Array<{ fingerprint: string; rejectedAt: string }>;
}
type StoreFile = ApprovalState;

/** One operator decision, as every store records it. */
export type ApprovalChange = { kind: 'approve'; approval: Approval } | { kind: 'reject'; fingerprint: string; rejectedAt: string };

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

function isUnder(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

export class ApprovalStore {
  private data: StoreFile = { approved: [], rejected: [] };
  readonly file: string;
  private readonly secretsDir: string;
  readonly maxRejected: number;
  private readonly persist: boolean;

  constructor(
    private readonly stateDir: string,
    options: ApprovalStoreOptions = {},
  ) {
    this.secretsDir = options.secretsDir ?? '';
    this.maxRejected = options.maxRejected ?? MAX_REJECTED;
    this.file = path.join(stateDir, APPROVALS_FILE);
    this.persist = options.file ?? true;
    if (this.persist && existsSync(this.file)) {
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

  isApproved(fingerprint: string): boolean {
    return this.data.approved.some((a) => a.fingerprint === fingerprint);
  }

  get rejectedCount(): number {
    return this.data.rejected.length;
  }

  /**
   * The real path of a secret file named through the API, or a GatewayError saying why it
   * may not be used: no onboarding.secretsDir, not under it (after following symlinks),
   * or under stateDir.
   */
  resolveSecretFile(key: string, file: string): string {
    if (!this.secretsDir) {
      throw usage(`credentials.${key}: onboarding.secretsDir is not set, so approvals take inline secrets only (credentials.password)`);
    }
    if (!path.isAbsolute(file)) throw usage(`credentials.${key} must be an absolute path on the gateway's host`);
    let real: string;
    try {
      real = realpathSync(file);
    } catch (err) {
      throw usage(`credentials.${key} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!isUnder(real, realDir(this.secretsDir))) throw usage(`credentials.${key} ${file} is not under onboarding.secretsDir`);
    if (real === realDir(this.stateDir) || isUnder(real, realDir(this.stateDir))) {
      throw usage(`credentials.${key} ${file} lies in the gateway's stateDir`);
    }
    return real;
  }

  /** The approval with its secret file paths checked again and resolved to real paths. */
  private checkedCredentials(c: ApprovalCredentials): ApprovalCredentials {
    const out = { ...c };
    for (const k of SECRET_FILE_KEYS) if (out[k] !== undefined) out[k] = this.resolveSecretFile(k, out[k]!);
    return out;
  }

  /** Validates and records an approval (replacing one for the same fingerprint or id). */
  approve(fingerprint: string, keyType: string, body: unknown, now = new Date()): Approval {
    const approval = this.prepare(fingerprint, keyType, body, now);
    this.commit({ kind: 'approve', approval });
    return approval;
  }

  /** Validates an approval without recording it; throws a GatewayError saying what is wrong. */
  prepare(fingerprint: string, keyType: string, body: unknown, now = new Date()): Approval {
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
    const checked = this.checkedCredentials(c as unknown as ApprovalCredentials);
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
    parseInventory(YAML.stringify({ devices: [toInventoryEntry(approval, checked)] }), `approval of ${fingerprint}`);
    return approval;
  }

  /** Records a decision in memory, and in approvals.json unless the store has no file. */
  commit(change: ApprovalChange): void {
    if (change.kind === 'approve') {
      const { fingerprint, id } = change.approval;
      this.data.approved = this.data.approved.filter((a) => a.fingerprint !== fingerprint && a.id !== id).concat(change.approval);
      this.data.rejected = this.data.rejected.filter((r) => r.fingerprint !== fingerprint);
    } else {
      const { fingerprint, rejectedAt } = change;
      this.data.approved = this.data.approved.filter((a) => a.fingerprint !== fingerprint);
      if (!this.isRejected(fingerprint)) this.data.rejected.push({ fingerprint, rejectedAt });
      if (this.data.rejected.length > this.maxRejected) this.data.rejected = this.data.rejected.slice(-this.maxRejected);
    }
    if (this.persist) this.save();
  }

  /** What the store holds (a copy). */
  snapshot(): ApprovalState {
    return { approved: [...this.data.approved], rejected: [...this.data.rejected] };
  }

  /** Replaces what the store holds (cluster mode: the copy read from Redis); true when it differs. */
  replace(next: ApprovalState): boolean {
    const changed = canonical(next) !== canonical(this.data);
    this.data = { approved: [...next.approved], rejected: [...next.rejected] };
    return changed;
  }

  /**
   * Rejects a fingerprint for good (and withdraws an approval of it). The caller decides
   * which fingerprints may be rejected; the list keeps the newest maxRejected.
   */
  reject(fingerprint: string, now = new Date()): void {
    this.commit({ kind: 'reject', fingerprint, rejectedAt: now.toISOString() });
  }

  /**
   * The approvals as inventory entries: secret files checked again (a symlink may have
   * changed since), ports the gateway reserves for itself dropped. What fails is logged.
   */
  entries(reservedPort: (port: number) => string | undefined, logger?: Logger): Array<{ approval: Approval; entry: Record<string, unknown> }> {
    const out: Array<{ approval: Approval; entry: Record<string, unknown> }> = [];
    for (const a of this.data.approved) {
      let credentials: ApprovalCredentials;
      try {
        credentials = this.checkedCredentials(a.credentials);
      } catch (err) {
        logger?.error({ device: a.id, fingerprint: a.fingerprint, reason: 'GW_ERR_INVENTORY' }, `approval not merged: ${describeError(err)}`);
        continue;
      }
      let approval = a;
      const reserved = a.port !== undefined ? reservedPort(a.port) : undefined;
      if (reserved) {
        // A saved approval never stops start-up: the device is kept, without that port.
        logger?.error({ device: a.id, port: a.port, reason: 'GW_ERR_LISTEN' }, `approved port ${a.port} not used: it is ${reserved}; the device is reachable on the shared port`);
        const { port: _dropped, ...rest } = a;
        approval = rest;
      }
      out.push({ approval, entry: toInventoryEntry(approval, credentials) });
    }
    return out;
  }

  private save(): void {
    writeDurably(this.file, JSON.stringify(this.data, null, 2) + '\n');
  }
}

/** The same decisions in any order compare equal. */
function canonical(state: ApprovalState): string {
  const byFingerprint = (a: { fingerprint: string }, b: { fingerprint: string }) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0);
  return JSON.stringify([[...state.approved].sort(byFingerprint), [...state.rejected].sort(byFingerprint)]);
}

function usage(message: string): GatewayError {
  return new GatewayError('GW_ERR_USAGE', message);
}

function toInventoryEntry(a: Approval, credentials: ApprovalCredentials): Record<string, unknown> {
  return { id: a.id, ssh: { hostKeys: [a.fingerprint] }, credentials: { ...credentials }, ...(a.port !== undefined ? { port: a.port } : {}) };
}

/**
 * The inventory file (validated on its own first: a bad file is rejected whole) plus every
 * approval that conflicts with nothing in it. Returns the merged inventory and the ids
 * that came from approvals.
 */
export function loadMergedInventory(
  file: string,
  store: ApprovalStore | undefined,
  logger?: Logger,
  reservedPort: (port: number) => string | undefined = () => undefined,
): { inventory: Inventory; approvedIds: Set<string> } {
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
  for (const { approval: a, entry } of store.entries(reservedPort, logger)) {
    const clash = fromFile.get(a.id)
      ? `id ${a.id}`
      : fromFile.byHostKey(a.fingerprint)
        ? `host key ${a.fingerprint}`
        : a.port !== undefined && ports.has(a.port)
          ? `port ${a.port}`
          : undefined;
    if (clash) {
      logger?.info({ device: a.id, fingerprint: a.fingerprint }, `approval not merged: the inventory file already has ${clash} (the file wins)`);
      continue;
    }
    if (a.port !== undefined) ports.add(a.port);
    devices.push(entry);
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

  /** The pending device, wherever it called (cluster mode: on any replica). */
  find(fingerprint: string): Promise<PendingDevice | undefined> {
    return Promise.resolve(this.get(fingerprint));
  }

  /** Every pending device, wherever it called (cluster mode: on any replica). */
  listAll(): PendingDevice[] | Promise<PendingDevice[]> {
    return this.list();
  }
}
