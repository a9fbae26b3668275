// Logger factory. JSON lines (pino) to stdout, in the schema of docs/LOGS.md: a string
// `level`, a `msg` on every line, child loggers carrying `device`, `user`, `remoteAddress`
// / `remotePort` so one grep follows one connection, and failures as `reason` (the
// metrics' label vocabulary) plus `code` (the GW_ERR_* code). Secrets never reach a log
// call: the redact list is a second line of defence, not the first.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { reasonLabel } from './errors.js';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { name: 'callhome-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        // "info", not 30: a pipeline filters on the name without a lookup table.
        level: (label) => ({ level: label }),
        log: withReasonLabel,
      },
      redact: {
        paths: ['password', 'passphrase', 'privateKey', 'token', '*.password', '*.passphrase', '*.privateKey', '*.token'],
        censor: '[redacted]',
      },
    },
    (destination ?? process.stdout) as pino.DestinationStream,
  );
}

/**
 * Log calls name a failure by its code (`reason: 'GW_ERR_AUTH_FAILED'`); the line carries
 * `reason: "auth_failed"` (the label the metrics use for it) and `code: "GW_ERR_AUTH_FAILED"`.
 */
export function withReasonLabel(fields: Record<string, unknown>): Record<string, unknown> {
  const reason = fields.reason;
  if (typeof reason !== 'string' || !reason.startsWith('GW_ERR_')) return fields;
  return { ...fields, reason: reasonLabel(reason), code: reason };
}

/** The peer of a connection, spelled the same on the call-home and northbound sides. */
export function remoteFields(remoteAddress: string | undefined, remotePort: number | undefined): { remoteAddress?: string; remotePort?: number } {
  return { remoteAddress, remotePort };
}
