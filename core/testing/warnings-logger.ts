import type { Logger } from '../logger.js';

/**
 * A Logger that keeps the message of every warning (children share the list) and drops the rest: for tests
 * that count what a hostile guest makes a device log (rate-limited lines, issue 19).
 */
export function warningsLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const note = (level: string) => (_o: object | string, msg?: string) => {
    if (level === 'warn') warnings.push(msg ?? '');
  };
  const logger: Logger = {
    trace: note('trace'),
    debug: note('debug'),
    info: note('info'),
    warn: note('warn'),
    error: note('error'),
    child: () => logger,
  };
  return { logger, warnings };
}
