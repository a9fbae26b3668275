// Config is derived from the schema (src/config/schema.ts), so the two cannot drift: the
// type checks below are compile-time (the build fails when one breaks), the rest runtime.
import test from 'ava';
import { configEnvNames, loadConfig } from '../../src/config/load.js';
import type { AdmissionConfig, Config, KeepaliveConfig } from '../../src/config/schema.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// Each leaf has the type of its default, or the union of its choices.
const typeChecks: [
  Equal<Config['log']['level'], 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>,
  Equal<Config['callhome']['tls']['enabled'], boolean>,
  Equal<Config['northbound']['port'], number>,
  Equal<Config['http']['allowedHosts'], string[]>,
  Equal<Config['northbound']['keepalive'], KeepaliveConfig>,
  Equal<Config['callhome']['failureBackoff'], AdmissionConfig['failureBackoff']>,
  Equal<Config['cluster']['peer']['advertise'], string>,
] = [true, true, true, true, true, true, true];

// @ts-expect-error a key the schema does not have is not in Config either
export type NoSuchKey = Config['northbound']['noSuchKey'];

test('the derived Config type matches the schema (checked when the tests compile)', (t) => {
  t.deepEqual(typeChecks, [true, true, true, true, true, true, true]);
});

/** Every leaf path of a loaded configuration. */
function leafPaths(node: Record<string, unknown>, prefix: string[] = []): string[] {
  return Object.entries(node).flatMap(([key, value]) =>
    value && typeof value === 'object' && !Array.isArray(value) ? leafPaths(value as Record<string, unknown>, [...prefix, key]) : [[...prefix, key].join('.')],
  );
}

test('a loaded configuration has exactly the schema keys, each with its environment variable', (t) => {
  const config: Config = loadConfig([], {});
  t.deepEqual(leafPaths(config as unknown as Record<string, unknown>).sort(), [...configEnvNames().keys()].sort());
  t.is(configEnvNames().get('callhome.failureBackoff.baseSeconds'), 'CHGW_CALLHOME_FAILUREBACKOFF_BASESECONDS');
});
