// Calls back when a file changes. Polling survives editors that replace files and
// Kubernetes' symlink swaps of ConfigMaps.
import { unwatchFile, watchFile, type Stats, type StatsListener } from 'node:fs';

export class FileWatcher {
  private watching: Array<[string, StatsListener]> = [];

  watch(file: string, onChange: () => void): void {
    const listener = (curr: Stats, prev: Stats) => {
      if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) onChange();
    };
    watchFile(file, { interval: 1000, persistent: false }, listener);
    this.watching.push([file, listener]);
  }

  stop(): void {
    for (const [file, listener] of this.watching) unwatchFile(file, listener);
    this.watching = [];
  }
}
