import { pino } from 'pino';
import type { Logger } from '../logger.js';

/** The framework logger: pino writing JSON lines to stderr (level from VMM_LOG_LEVEL, default 'info'). */
export function createLogger(level = process.env.VMM_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true })) as unknown as Logger;
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' }) as unknown as Logger;
}
