// The V8 heap setting the gateway is launched with, and the start-up line that says whether
// this process has it.
//
// Carrying bulk NETCONF, ssh2 hands the gateway decrypted payloads that are views into
// Node's socket read buffers, so ArrayBuffers come and go at the rate of the bytes. V8 counts
// the external memory allocated since the last full collection against the old generation's
// allocation limit, and the room that leaves depends on limits set early in the process's
// life: with node's default young generation (a semi-space that starts at 1 MiB and grows),
// about one gateway process in three settles into a regime where a full mark-compact follows
// every second scavenge, and stays there — 1.4–2× the CPU per byte of the others
// (docs/BENCHMARKS.md). Starting the semi-space at its 16 MiB maximum kept every process
// measured out of that regime. The space is reserved, not touched: resident memory grows
// only as the young generation is used, as it would under load with the default anyway.
// V8 reads the flag when the heap is created, so it must be on node's command line
// (NODE_OPTIONS does not accept it): the bin's shebang, `npm start`, the image's ENTRYPOINT.
import type { Logger } from './log.js';

export const SEMI_SPACE_MIB = 16;
/** node's command-line flags for a gateway process (before the script). */
export const GATEWAY_NODE_FLAGS: readonly string[] = [`--min-semi-space-size=${SEMI_SPACE_MIB}`];

/** The young generation's starting semi-space this process was given on node's command line, in MiB (0: node's default). */
export function minSemiSpaceMiB(execArgv: readonly string[] = process.execArgv): number {
  let mib = 0;
  for (const arg of execArgv) {
    const m = /^--min[-_]semi[-_]space[-_]size=(\d+)$/.exec(arg);
    if (m) mib = Number(m[1]); // the last one wins, as in V8
  }
  return mib;
}

/** Says at start-up whether the process runs with the young generation bulk transfers need. */
export function logHeapSettings(logger: Logger): void {
  const semiSpaceMiB = minSemiSpaceMiB();
  if (semiSpaceMiB >= SEMI_SPACE_MIB) logger.info({ semiSpaceMiB }, 'V8 young generation sized for bulk transfers');
  else logger.warn({ semiSpaceMiB }, `node started without ${GATEWAY_NODE_FLAGS.join(' ')}: bulk transfers may cost up to twice the CPU (docs/BENCHMARKS.md)`);
}
