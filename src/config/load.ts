// Loading the configuration. Sources in rising priority: built-in defaults, --config files
// (JSON or YAML, in order), CHGW_<PATH> environment variables. Parsed once here; everything
// below receives the plain typed object.
import convict from 'convict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { GatewayError } from '../errors.js';
import './formats.js';
import { schema, type Config } from './schema.js';

/** Every key's environment variable: the key path upper-cased, dots as underscores. */
function withEnvNames(node: Record<string, unknown>, prefix: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const keyPath = [...prefix, key];
    if (value && typeof value === 'object' && 'default' in value) {
      out[key] = { ...value, env: envName(keyPath.join('.')) };
    } else {
      out[key] = withEnvNames(value as Record<string, unknown>, keyPath);
    }
  }
  return out;
}

function envName(keyPath: string): string {
  return `CHGW_${keyPath.replaceAll('.', '_').toUpperCase()}`;
}

/** The schema as convict reads it: every leaf with its environment variable. */
export const configSchema = withEnvNames(schema);

/**
 * Old key names that keep working, old → new. An alias is the same key under another name:
 * in a file or the environment it stands for the new key, with the usual precedence between
 * sources; one source setting both to different values is an error naming both.
 */
export const CONFIG_ALIASES: ReadonlyMap<string, string> = new Map([
  // Held sessions serve SSH devices with one session too, not only TLS devices.
  ['callhome.tls.keepaliveInterval', 'callhome.heldSession.keepaliveInterval'],
  ['callhome.tls.drainTimeout', 'callhome.heldSession.drainTimeout'],
]);

/** The alias of `key`, if it has one. */
function aliasOf(key: string): string | undefined {
  for (const [old, current] of CONFIG_ALIASES) if (current === key) return old;
  return undefined;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `old` and `current` name one key (key paths in a file, variables in the environment). */
function conflict(where: string, old: string, current: string): GatewayError {
  return new GatewayError('GW_ERR_CONFIG', `${where}${old} and ${current} are set to different values (${old} is an old name for ${current}): set only ${current}`);
}

/** Rewrites old key names in one file's mapping to the new ones, in place. */
function renameAliasedKeys(data: Record<string, unknown>, file: string): void {
  for (const [old, current] of CONFIG_ALIASES) {
    const oldPath = old.split('.');
    const parent = oldPath.slice(0, -1).reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), data);
    const leaf = oldPath.at(-1)!;
    if (!parent || typeof parent !== 'object' || !(leaf in parent)) continue;
    const value = (parent as Record<string, unknown>)[leaf];
    delete (parent as Record<string, unknown>)[leaf];
    let node = data;
    const newPath = current.split('.');
    for (const part of newPath.slice(0, -1)) {
      if (!node[part] || typeof node[part] !== 'object') node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    const newLeaf = newPath.at(-1)!;
    if (newLeaf in node && !sameValue(node[newLeaf], value)) throw conflict(`config file ${file}: `, old, current);
    node[newLeaf] = value;
  }
}

/** The environment with old variable names replaced by the new ones; `setAs` maps each new name to the one actually set. */
function renameAliasedEnv(env: NodeJS.ProcessEnv, setAs: Map<string, string>): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [old, current] of CONFIG_ALIASES) {
    const [oldName, newName] = [envName(old), envName(current)];
    const value = out[oldName];
    if (value === undefined) continue;
    delete out[oldName];
    if (out[newName] !== undefined && out[newName] !== value) throw conflict('', oldName, newName);
    out[newName] = value;
    setAs.set(newName, oldName);
  }
  return out;
}

interface Leaf {
  path: string;
  env: string;
  doc: string;
  default: unknown;
  sensitive: boolean;
}

/** Every key of the schema, in schema order. */
function schemaLeaves(): Leaf[] {
  const leaves: Leaf[] = [];
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const [key, value] of Object.entries(node)) {
      const v = value as Record<string, unknown>;
      if (!('env' in v)) {
        walk(v, [...prefix, key]);
        continue;
      }
      leaves.push({ path: [...prefix, key].join('.'), env: v.env as string, doc: v.doc as string, default: v.default, sensitive: v.sensitive === true });
    }
  };
  walk(configSchema, []);
  return leaves;
}

/** Every environment variable the schema reads, for docs and deployment cross-checks. */
export function configEnvNames(): Map<string, string> {
  return new Map(schemaLeaves().map((leaf) => [leaf.path, leaf.env]));
}

/** One entry per key (path, environment variable, default, doc), for `run --help`. */
export function describeConfigKeys(): string[] {
  return schemaLeaves().map((leaf) => {
    const old = aliasOf(leaf.path);
    const alias = old ? `\n      (old name ${old}, ${envName(old)}: an alias, still read)` : '';
    return `  ${leaf.path} (${leaf.env}, default ${leaf.sensitive ? '(secret)' : JSON.stringify(leaf.default)})\n      ${leaf.doc}${alias}`;
  });
}

function parseFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `config file ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Builds the configuration. Throws GatewayError('GW_ERR_CONFIG') naming the key on an
 * unknown key or a bad value; the CLI turns that into exit code 2.
 */
export function loadConfig(files: string[] = [], givenEnv: NodeJS.ProcessEnv = process.env): Config {
  const setAs = new Map<string, string>();
  const env = renameAliasedEnv(givenEnv, setAs);
  const conf = convict(configSchema as unknown as convict.Schema<Config>, { env, args: [] });
  for (const file of files) {
    const data = parseFile(file);
    if (data === null || data === undefined) continue;
    if (typeof data !== 'object' || Array.isArray(data)) {
      throw new GatewayError('GW_ERR_CONFIG', `config file ${file} must hold a mapping of keys`);
    }
    renameAliasedKeys(data as Record<string, unknown>, file);
    try {
      conf.load(data);
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG', `config file ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const envNames = configEnvNames();
  for (const [key, name] of envNames) {
    // convict silently skips an env value it cannot coerce; name it instead.
    const raw = env[name];
    if (raw !== undefined && typeof conf.get(key as never) === 'number' && !/^\s*-?\d+(\.\d+)?\s*$/.test(raw)) {
      throw new GatewayError('GW_ERR_CONFIG', `${setAs.get(name) ?? name} (${key}): must be a number, got ${JSON.stringify(raw)}`);
    }
  }
  const known = new Set(envNames.values());
  for (const name of Object.keys(env)) {
    if (name.startsWith('CHGW_') && !known.has(name)) {
      throw new GatewayError('GW_ERR_CONFIG', `${name}: no such configuration key`);
    }
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `invalid configuration: ${(err as Error).message.split('\n')[0]}`);
  }
  const config = conf.getProperties() as Config;
  if (config.northbound.hostKeyFile === '') {
    config.northbound.hostKeyFile = path.join(config.stateDir, 'northbound_host_key');
  }
  const peer = config.cluster.peer;
  if (peer.caFile === '') peer.caFile = path.join(config.stateDir, 'tls', 'ca.crt');
  if (peer.certFile === '') peer.certFile = path.join(config.stateDir, 'tls', 'peer.crt');
  if (peer.keyFile === '') peer.keyFile = path.join(config.stateDir, 'tls', 'peer.key');
  if (config.cluster.replicaId === '') config.cluster.replicaId = hostname();
  return config;
}
