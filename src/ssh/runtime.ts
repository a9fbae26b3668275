// Which of ssh2's fast paths this process has: its native crypto binding and our packet-path patch.
import type { Logger } from '../log.js';
import { sshNativeCryptoAvailable, sshPacketPathPatched } from './internals.js';

/** Says at start-up whether ssh2 runs on its fast paths. */
export function logSshRuntime(logger: Logger): void {
  const nativeCrypto = sshNativeCryptoAvailable();
  if (nativeCrypto) logger.info({ nativeCrypto }, 'ssh2 native crypto binding in use');
  else logger.warn({ nativeCrypto }, 'ssh2 native crypto binding missing: SSH runs on slower JavaScript crypto');
  const ssh2Patched = sshPacketPathPatched();
  if (ssh2Patched) logger.info({ ssh2Patched }, 'ssh2 packet-path patch applied');
  else logger.warn({ ssh2Patched }, 'ssh2 packet-path patch not applied (patches/, npm ci): bulk transfers cost more CPU');
}
