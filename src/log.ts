// Logger factory. JSON lines (pino) to stdout; child loggers carry `device`, `client`,
// `splice` fields so one grep follows one connection. Secrets never reach a log call:
// the redact list is a second line of defence, not the first.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { name: 'callhome-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', 'passphrase', 'privateKey', 'token', '*.password', '*.passphrase', '*.privateKey', '*.token'],
        censor: '[redacted]',
      },
    },
    (destination ?? process.stdout) as pino.DestinationStream,
  );
}
