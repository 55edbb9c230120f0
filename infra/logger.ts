import { pino } from 'pino';

export type Logger = pino.Logger;

/** JSON lines on stdout; secret-bearing fields are censored wherever they appear. */
export const createLogger = (level: string, name = 'strata'): Logger =>
  pino({
    name,
    level,
    redact: {
      paths: [
        'password',
        '*.password',
        'passwordHash',
        '*.passwordHash',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        '*.headers.authorization',
        'secret',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  });

export const silentLogger = (): Logger => pino({ level: 'silent' });
