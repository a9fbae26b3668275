// The V8 heap flags the gateway is launched with, and the start-up line that says whether
// this process has them.
//
// Carrying bulk NETCONF, ssh2 hands the gateway decrypted payloads that are views into
// Node's socket read buffers, so ArrayBuffers come and go at the rate of the bytes. V8
// scavenges them once 32 MiB of young ones have piled up, and counts the external memory
// allocated since the last full collection against the old generation's allocation limit.
// The gateway's own heap is small (about 16 MiB), so with V8's dynamic growing factor (1.1
// to 4) the limit leaves, in about one process in three, less room above it than one such
// pile: then a full mark-compact follows every second scavenge, the time it takes lowers the factor V8 picks
// next, and the process stays in that regime — 1.4–2× the CPU per byte of a process that
// is not (docs/BENCHMARKS.md, bench/heap-regime.ts). A fixed factor of 4 (V8's own upper
// bound, which it picks itself on a host with memory to spare) leaves 48 MiB of room above a
// 16 MiB heap. V8 still caps every limit at halfway between the live heap and the heap's
// maximum, which node derives from the container's memory limit: in a small pod the flag
// lets garbage grow towards that cap sooner, never past it.
// V8 reads the flag whenever it sets the heap's limits, the first time during start-up;
// NODE_OPTIONS does not accept it and node documents v8.setFlagsFromString() after start as
// undefined behaviour, so it goes on node's command line: the bin's shebang, `npm start`,
// the image's ENTRYPOINT.
import type { Logger } from './log.js';

/** node's command-line flags for a gateway process (before the script). */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=300'];

/** The flags of GATEWAY_NODE_FLAGS that are not in effect in a process started with `execArgv`. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  // V8 spells flags with - or _, and the last occurrence wins
  const canonical = (arg: string) => arg.replace(/^--([^=]*)/, (_, name: string) => '--' + name.replaceAll('_', '-'));
  const given = new Map<string, string>();
  for (const arg of execArgv.map(canonical)) given.set(arg.split('=')[0]!, arg);
  return GATEWAY_NODE_FLAGS.filter((flag) => given.get(flag.split('=')[0]!) !== flag);
}

/** Says at start-up whether the process runs with the heap flags bulk transfers need. */
export function logHeapSettings(logger: Logger): void {
  const missing = missingNodeFlags();
  if (missing.length === 0) logger.info({ nodeFlags: GATEWAY_NODE_FLAGS }, 'V8 heap sized for bulk transfers');
  else logger.warn({ nodeFlags: missing }, `node started without ${missing.join(' ')}: bulk transfers may cost up to twice the CPU (docs/BENCHMARKS.md)`);
}
