// Which of ssh2's fast paths this process has: its native crypto binding and our packet-path patch.
import { createRequire } from 'node:module';
import type { Logger } from '../log.js';

/** Whether ssh2's native crypto binding loaded (without it ssh2 runs at about half speed). */
export function sshNativeCryptoAvailable(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    return false;
  }
}

/**
 * Whether patches/ssh2+*.patch is applied (npm ci's postinstall): without it ssh2 writes
 * every SSH packet on its own and allocates a buffer for each, at 1.15-1.4x the CPU per
 * byte (docs/SSH2_PATCH.md).
 */
export function sshPacketPathPatched(): boolean {
  const require = createRequire(import.meta.url);
  try {
    return typeof (require('ssh2/lib/utils.js') as { makeSocketWriter?: unknown }).makeSocketWriter === 'function';
  } catch {
    return false;
  }
}

/** Says at start-up whether ssh2 runs on its fast paths. */
export function logSshRuntime(logger: Logger): void {
  const nativeCrypto = sshNativeCryptoAvailable();
  if (nativeCrypto) logger.info({ nativeCrypto }, 'ssh2 native crypto binding in use');
  else logger.warn({ nativeCrypto }, 'ssh2 native crypto binding missing: SSH runs on slower JavaScript crypto');
  const ssh2Patched = sshPacketPathPatched();
  if (ssh2Patched) logger.info({ ssh2Patched }, 'ssh2 packet-path patch applied');
  else logger.warn({ ssh2Patched }, 'ssh2 packet-path patch not applied (patches/, npm ci): bulk transfers cost more CPU');
}
