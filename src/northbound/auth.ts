// Who may log in northbound, and which devices each may reach. Passwords are kept as
// scrypt hashes (`callhome-gateway hash-password`); plain `password:` is for labs.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync } from 'node:fs';
import picomatch from 'picomatch';
import YAML from 'yaml';
import ssh2 from 'ssh2';
import { GatewayError } from '../errors.js';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

// N=2^15, r=8, p=1: ~32 MiB and tens of ms per check, as OWASP suggests for scrypt.
const SCRYPT_N = 32768;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LEN = 32;
const MAXMEM = 128 * SCRYPT_N * SCRYPT_R * 2;

/** `scrypt$N$r$p$<salt b64>$<hash b64>` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, KEY_LEN, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: MAXMEM });
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64'), hash.toString('base64')].join('$');
}

const HASH_RE = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export function isPasswordHash(text: string): boolean {
  const m = HASH_RE.exec(text);
  if (!m) return false;
  const n = Number(m[1]);
  return n >= 2 && n <= 1 << 20 && (n & (n - 1)) === 0 && Number(m[2]) <= 32 && Number(m[3]) <= 16;
}

export async function verifyPasswordHash(password: string, encoded: string): Promise<boolean> {
  const m = HASH_RE.exec(encoded);
  if (!m || !isPasswordHash(encoded)) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  const actual = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 128 * N * r * 2 });
  return timingSafeEqual(actual, expected);
}

/**
 * A glob over device ids (picomatch): `*` any run of characters, `?` one character,
 * `[0-9]` a class, `{edge,core}-*` alternatives. Ids hold no `/`, and `dot` lets `*` match
 * an id that starts with a dot. A malformed pattern throws.
 */
export function globToRegExp(glob: string): RegExp {
  return picomatch.makeRe(glob, { dot: true, strictBrackets: true, nonegate: true });
}

export interface UserEntry {
  name: string;
  passwordHash?: string;
  password?: string;
  /** Public keys allowed for this user. */
  authorizedKeys: ssh2.ParsedKey[];
  devices: RegExp[];
  /** `read-only`: writes and session control are refused by the gateway (netconf/rpc-filter.ts). */
  access: UserAccess;
}

export type UserAccess = 'read-write' | 'read-only';

export class Users {
  private readonly byName: Map<string, UserEntry>;
  constructor(entries: UserEntry[]) {
    this.byName = new Map(entries.map((u) => [u.name, u]));
  }

  static empty(): Users {
    return new Users([]);
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): UserEntry | undefined {
    return this.byName.get(name);
  }

  async checkPassword(name: string, password: string): Promise<boolean> {
    const user = this.byName.get(name);
    if (!user) {
      // Spend the same effort for unknown names so timing does not reveal which exist.
      await verifyPasswordHash(password, DUMMY_HASH);
      return false;
    }
    if (user.passwordHash !== undefined) return verifyPasswordHash(password, user.passwordHash);
    if (user.password !== undefined) {
      const a = Buffer.from(password);
      const b = Buffer.from(user.password);
      return a.length === b.length && timingSafeEqual(a, b);
    }
    return false;
  }

  /** The authorized key of `name` whose public blob is `blob`, if any. */
  findKey(name: string, blob: Buffer): ssh2.ParsedKey | undefined {
    return this.byName.get(name)?.authorizedKeys.find((k) => k.getPublicSSH().equals(blob));
  }

  accessOf(name: string): UserAccess {
    return this.byName.get(name)?.access ?? 'read-write';
  }

  mayReach(name: string, deviceId: string): boolean {
    return this.byName.get(name)?.devices.some((re) => re.test(deviceId)) ?? false;
  }
}

// A hash of a random password, computed once, for the unknown-user path.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

const USER_KEYS = new Set(['name', 'passwordHash', 'password', 'authorizedKeys', 'devices', 'access']);
const USER_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

function fail(file: string, where: string, message: string): never {
  throw new GatewayError('GW_ERR_USERS', `users ${file}: ${where}: ${message}`);
}

export function parseUsers(text: string, file: string): Users {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    fail(file, 'YAML', (err as Error).message.split('\n')[0]!);
  }
  // An empty file is far more often a truncated write than a wish for no users (which would
  // end every session): no users is said explicitly, `users: []`.
  if (doc === null || doc === undefined) fail(file, 'top level', 'the file is empty (write "users: []" for no users)');
  if (typeof doc !== 'object' || Array.isArray(doc)) fail(file, 'top level', 'must be a mapping with "users"');
  for (const key of Object.keys(doc)) if (key !== 'users') fail(file, 'top level', `unknown key "${key}"`);
  const given = (doc as Record<string, unknown>).users;
  if (given === undefined || given === null) fail(file, 'top level', 'no "users" list (write "users: []" for no users)');
  const list = (doc as Record<string, unknown>).users ?? [];
  if (!Array.isArray(list)) fail(file, 'users', 'must be a list');
  const entries: UserEntry[] = [];
  const names = new Set<string>();
  list.forEach((raw: unknown, index) => {
    let where = `users[${index}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, where, 'must be a mapping');
    const u = raw as Record<string, unknown>;
    // A user name must not hold '@': the shared port splits `<user>@<device>` at the last '@'.
    if (typeof u.name !== 'string' || !USER_NAME_RE.test(u.name)) {
      fail(file, where, 'name must be 1..64 characters of [A-Za-z0-9._-]');
    }
    where = `user "${u.name}"`;
    if (names.has(u.name)) fail(file, where, 'duplicate name');
    names.add(u.name);
    for (const key of Object.keys(u)) if (!USER_KEYS.has(key)) fail(file, where, `unknown key "${key}"`);
    if (u.access !== undefined && u.access !== 'read-only' && u.access !== 'read-write') fail(file, where, 'access must be read-only or read-write');
    const entry: UserEntry = { name: u.name, authorizedKeys: [], devices: [], access: (u.access as UserAccess | undefined) ?? 'read-write' };
    if (u.passwordHash !== undefined) {
      if (typeof u.passwordHash !== 'string' || !isPasswordHash(u.passwordHash)) {
        fail(file, where, 'passwordHash is not a hash from `callhome-gateway hash-password`');
      }
      entry.passwordHash = u.passwordHash;
    }
    if (u.password !== undefined) {
      if (typeof u.password !== 'string' || u.password === '') fail(file, where, 'password must be a non-empty string');
      if (entry.passwordHash !== undefined) fail(file, where, 'give passwordHash or password, not both');
      entry.password = u.password;
    }
    if (u.authorizedKeys !== undefined) {
      if (!Array.isArray(u.authorizedKeys)) fail(file, where, 'authorizedKeys must be a list of public key lines');
      for (const line of u.authorizedKeys) {
        if (typeof line !== 'string') fail(file, where, 'authorizedKeys entries must be strings');
        const parsed = ssh2.utils.parseKey(line.trim());
        const key = parsed instanceof Error ? undefined : Array.isArray(parsed) ? parsed[0] : parsed;
        if (!key) fail(file, where, `authorizedKeys entry is not an SSH public key: ${line.slice(0, 40)}`);
        entry.authorizedKeys.push(key);
      }
    }
    if (entry.passwordHash === undefined && entry.password === undefined && entry.authorizedKeys.length === 0) {
      fail(file, where, 'needs passwordHash, password or authorizedKeys');
    }
    const devices = u.devices ?? [];
    if (!Array.isArray(devices) || devices.some((d) => typeof d !== 'string' || d === '')) {
      fail(file, where, 'devices must be a list of glob patterns');
    }
    entry.devices = (devices as string[]).map((glob) => {
      try {
        return globToRegExp(glob);
      } catch (err) {
        return fail(file, where, `devices pattern "${glob}": ${(err as Error).message}`);
      }
    });
    entries.push(entry);
  });
  return new Users(entries);
}

export function loadUsers(file: string): Users {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_USERS', `users ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseUsers(text, file);
}
