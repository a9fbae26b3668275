// Preloaded into a gateway process (`node --import`) by bench/heap-regime.ts: counts the full
// (mark-compact) collections and writes the count to the file named by BENCH_GC_COUNT_FILE
// after each one, so the benchmark can read it while the process runs.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_GC_COUNT_FILE;
if (file) {
  let full = 0;
  writeFileSync(file, '0');
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full++;
    }
    writeFileSync(file, String(full));
  }).observe({ entryTypes: ['gc'] });
}
