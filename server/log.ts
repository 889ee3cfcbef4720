// pino JSON logs. The logger is created in main and passed down. BMC passwords, tokens and authorization
// headers are redacted wherever they appear in a logged object.
import pino from 'pino';

export type Logger = pino.Logger;

export const REDACT = ['password', '*.password', '*.*.password', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'chapPassword', '*.chapPassword', 'secretKey', 'kek', '*.kek', 'previousKeks', '*.previousKeks'];

export function createLogger({ level = 'info', destination }: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: pino.LoggerOptions = { level, base: { svc: 'bootfarm' }, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
