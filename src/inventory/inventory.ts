// The device inventory: which host keys belong to which device id, and the credentials
// the gateway logs in to that device with (RFC 8071 §4.1 C7). Loaded whole and validated
// whole: a file with any error is rejected and the previous inventory stays in force.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import ssh2 from 'ssh2';
import { GatewayError } from '../errors.js';
import { normalizeHostKey } from './identity.js';
import { parseTlsEntry, type TlsEntry } from './inventory-tls.js';
import type { SessionMode } from '../device/session-mode.js';

export const DEVICE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface DeviceCredentials {
  username: string;
  password?: string;
  privateKey?: Buffer;
  passphrase?: string;
}

export interface DeviceEntry {
  id: string;
  /** `SHA256:` fingerprints of the host keys this device may present. */
  hostKeys: string[];
  credentials: DeviceCredentials;
  /** A dedicated northbound port, when the entry asks for one. */
  port?: number;
  /** TLS call home: how this device's certificate is recognised (RFC 8071 §4.2). */
  tls?: TlsEntry;
  /**
   * How client sessions reach an SSH device (device/session-mode.ts): `single` lends its held
   * first session to one client at a time, `multiple` opens a channel per client; absent: auto.
   */
  sessions?: SessionMode;
  /** A periodic device: released after `idleTimeout` seconds without a client. */
  periodic?: { idleTimeout: number };
}

export class Inventory {
  readonly devices: ReadonlyMap<string, DeviceEntry>;
  private readonly byFingerprint: Map<string, DeviceEntry>;

  constructor(entries: DeviceEntry[]) {
    this.devices = new Map(entries.map((e) => [e.id, e]));
    this.byFingerprint = new Map();
    for (const e of entries) for (const fp of e.hostKeys) this.byFingerprint.set(fp, e);
  }

  static empty(): Inventory {
    return new Inventory([]);
  }

  byHostKey(fingerprint: string): DeviceEntry | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  get(id: string): DeviceEntry | undefined {
    return this.devices.get(id);
  }

  /** Entries that may call home over TLS. */
  tlsEntries(): Array<DeviceEntry & { tls: TlsEntry }> {
    return [...this.devices.values()].filter((e): e is DeviceEntry & { tls: TlsEntry } => e.tls !== undefined);
  }
}

const DEVICE_KEYS = new Set(['id', 'ssh', 'tls', 'credentials', 'port', 'sessions', 'periodic', 'idleTimeout']);
/** The IETF ietf-netconf-server model's default idle-timeout for periodic connections. */
export const DEFAULT_IDLE_TIMEOUT = 180;
const CREDENTIAL_KEYS = new Set(['username', 'password', 'passwordFile', 'privateKeyFile', 'passphraseFile']);

function fail(file: string, where: string, message: string): never {
  throw new GatewayError('GW_ERR_INVENTORY', `inventory ${file}: ${where}: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readSecretFile(file: string, baseDir: string, where: string, key: string): string {
  const resolved = path.resolve(baseDir, file);
  try {
    return readFileSync(resolved, 'utf8');
  } catch (err) {
    fail(file, where, `${key} ${resolved} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function parseCredentials(raw: unknown, defaults: Record<string, unknown> | undefined, file: string, baseDir: string, where: string): DeviceCredentials {
  if (raw !== undefined && !isRecord(raw)) fail(file, where, 'credentials must be a mapping');
  // Fields a device lacks come from defaults; a device that names any secret of its own
  // does not inherit the default secret (it would be tried against the wrong device).
  const own = (raw ?? {}) as Record<string, unknown>;
  const ownsSecret = ['password', 'passwordFile', 'privateKeyFile'].some((k) => k in own);
  const merged: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(defaults ?? {})) {
    if (ownsSecret && k !== 'username') continue;
    merged[k] = v;
  }
  Object.assign(merged, own);
  for (const key of Object.keys(merged)) {
    if (!CREDENTIAL_KEYS.has(key)) fail(file, where, `unknown credentials key "${key}"`);
  }
  const username = merged.username;
  if (typeof username !== 'string' || username === '') fail(file, where, 'credentials.username is required');
  const creds: DeviceCredentials = { username };
  const secrets = ['password', 'passwordFile', 'privateKeyFile'].filter((k) => merged[k] !== undefined);
  if (secrets.length === 0) fail(file, where, 'credentials need one of password, passwordFile, privateKeyFile');
  if (secrets.includes('password') && secrets.includes('passwordFile')) {
    fail(file, where, 'give password or passwordFile, not both');
  }
  for (const k of secrets.concat(merged.passphraseFile !== undefined ? ['passphraseFile'] : [])) {
    if (typeof merged[k] !== 'string') fail(file, where, `credentials.${k} must be a string`);
  }
  if (typeof merged.password === 'string') creds.password = merged.password;
  if (typeof merged.passwordFile === 'string') {
    creds.password = readSecretFile(merged.passwordFile, baseDir, where, 'passwordFile').replace(/\r?\n$/, '');
  }
  if (typeof merged.passphraseFile === 'string') {
    creds.passphrase = readSecretFile(merged.passphraseFile, baseDir, where, 'passphraseFile').replace(/\r?\n$/, '');
  }
  if (typeof merged.privateKeyFile === 'string') {
    const keyText = readSecretFile(merged.privateKeyFile, baseDir, where, 'privateKeyFile');
    const parsed = ssh2.utils.parseKey(keyText, creds.passphrase);
    if (parsed instanceof Error) fail(file, where, `privateKeyFile ${merged.privateKeyFile}: ${parsed.message}`);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key || !key.isPrivateKey()) fail(file, where, `privateKeyFile ${merged.privateKeyFile} holds no private key`);
    creds.privateKey = Buffer.from(keyText);
  }
  return creds;
}

function parsePeriodic(raw: Record<string, unknown>, file: string, where: string): { idleTimeout: number } | undefined {
  if (raw.periodic !== undefined && typeof raw.periodic !== 'boolean') fail(file, where, 'periodic must be true or false');
  if (raw.idleTimeout !== undefined) {
    if (raw.periodic !== true) fail(file, where, 'idleTimeout applies to periodic devices only (periodic: true)');
    if (typeof raw.idleTimeout !== 'number' || !Number.isFinite(raw.idleTimeout) || raw.idleTimeout <= 0) {
      fail(file, where, 'idleTimeout must be a number of seconds > 0');
    }
  }
  if (raw.periodic !== true) return undefined;
  return { idleTimeout: (raw.idleTimeout as number | undefined) ?? DEFAULT_IDLE_TIMEOUT };
}

/** Parses inventory YAML text. `file` is used in messages and to resolve relative secret files. */
export function parseInventory(text: string, file: string): Inventory {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    fail(file, 'YAML', (err as Error).message.split('\n')[0]!);
  }
  // An empty file is far more often a truncated write than a wish for no devices (which
  // would disconnect every device): no devices is said explicitly, `devices: []`.
  if (doc === null || doc === undefined) fail(file, 'top level', 'the file is empty (write "devices: []" for no devices)');
  if (!isRecord(doc)) fail(file, 'top level', 'must be a mapping with "devices"');
  for (const key of Object.keys(doc)) {
    if (key !== 'devices' && key !== 'defaults') fail(file, 'top level', `unknown key "${key}"`);
  }
  if (!('devices' in doc) || doc.devices === null) fail(file, 'top level', 'no "devices" list (write "devices: []" for no devices)');
  const defaults = doc.defaults;
  if (defaults !== undefined && !isRecord(defaults)) fail(file, 'defaults', 'must be a mapping');
  for (const key of Object.keys(defaults ?? {})) {
    if (key !== 'credentials') fail(file, 'defaults', `unknown key "${key}"`);
  }
  const defaultCreds = (defaults as Record<string, unknown> | undefined)?.credentials;
  if (defaultCreds !== undefined && !isRecord(defaultCreds)) fail(file, 'defaults.credentials', 'must be a mapping');
  const list = doc.devices ?? [];
  if (!Array.isArray(list)) fail(file, 'devices', 'must be a list');
  const baseDir = path.dirname(path.resolve(file));
  const entries: DeviceEntry[] = [];
  const ids = new Set<string>();
  const owners = new Map<string, string>();
  const ports = new Map<number, string>();
  list.forEach((raw, index) => {
    let where = `devices[${index}]`;
    if (!isRecord(raw)) fail(file, where, 'must be a mapping');
    const id = raw.id;
    if (typeof id !== 'string' || !DEVICE_ID_RE.test(id)) {
      fail(file, where, 'id must be 1..64 characters of [A-Za-z0-9._-]');
    }
    where = `device "${id}"`;
    if (ids.has(id)) fail(file, where, 'duplicate id');
    ids.add(id);
    for (const key of Object.keys(raw)) if (!DEVICE_KEYS.has(key)) fail(file, where, `unknown key "${key}"`);
    let tls: TlsEntry | undefined;
    if (raw.tls !== undefined) {
      try {
        tls = parseTlsEntry(raw.tls, baseDir);
      } catch (err) {
        fail(file, where, (err as Error).message);
      }
    }
    const ssh = raw.ssh;
    if (!isRecord(ssh) && !(tls && ssh === undefined)) fail(file, where, tls ? 'ssh must be a mapping' : 'ssh.hostKeys (or tls) is required');
    for (const key of Object.keys(ssh ?? {})) if (key !== 'hostKeys') fail(file, where, `unknown key "ssh.${key}"`);
    if (isRecord(ssh) && (!Array.isArray(ssh.hostKeys) || ssh.hostKeys.length === 0)) {
      fail(file, where, 'ssh.hostKeys must list one or more fingerprints or public key lines');
    }
    const hostKeys = ((isRecord(ssh) ? ssh.hostKeys : []) as unknown[]).map((k: unknown) => {
      if (typeof k !== 'string') fail(file, where, 'ssh.hostKeys entries must be strings');
      try {
        return normalizeHostKey(k);
      } catch (err) {
        fail(file, where, (err as Error).message);
      }
    });
    for (const fp of hostKeys) {
      const other = owners.get(fp);
      if (other !== undefined && other !== id) fail(file, where, `host key ${fp} is also listed for "${other}"`);
      owners.set(fp, id);
    }
    if (raw.sessions !== undefined && raw.sessions !== 'auto' && raw.sessions !== 'single' && raw.sessions !== 'multiple') {
      fail(file, where, 'sessions must be "auto", "single" or "multiple"');
    }
    let port: number | undefined;
    if (raw.port !== undefined) {
      if (typeof raw.port !== 'number' || !Number.isInteger(raw.port) || raw.port < 1 || raw.port > 65535) {
        fail(file, where, 'port must be a whole number 1..65535');
      }
      const other = ports.get(raw.port);
      if (other !== undefined) fail(file, where, `port ${raw.port} is also given to "${other}"`);
      ports.set(raw.port, id);
      port = raw.port;
    }
    // NETCONF over TLS has no login (RFC 7589 §7: the certificate maps to the user on the
    // device), so a TLS-only entry needs no credentials.
    const credentials =
      ssh === undefined && raw.credentials === undefined
        ? { username: '' }
        : parseCredentials(raw.credentials, defaultCreds as Record<string, unknown> | undefined, file, baseDir, where);
    const periodic = parsePeriodic(raw, file, where);
    entries.push({
      id,
      hostKeys: [...new Set(hostKeys)],
      credentials,
      ...(port !== undefined ? { port } : {}),
      ...(tls ? { tls } : {}),
      ...(raw.sessions === 'single' || raw.sessions === 'multiple' ? { sessions: raw.sessions as SessionMode } : {}),
      ...(periodic ? { periodic } : {}),
    });
  });
  return new Inventory(entries);
}

export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_INVENTORY', `inventory ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseInventory(text, file);
}
