import * as fs from 'node:fs';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import type { Logger } from '../logger.js';
import { prettyLogLine } from './log-format.js';

/** Log levels `--log-level` accepts (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The logging flags of `vmm run`. */
export interface LogFlags {
  logLevel?: string;
  logFile?: string;
  logFormat?: 'pretty' | 'json';
}

/** Adds `--log-level`, `--log-file` and `--log-format` to `cmd`. */
export function addLogOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--log-level <level>', 'how much to log (default: $VMM_LOG_LEVEL, else info)').choices([
        ...LOG_LEVELS,
      ]),
    )
    .option('--log-file <file>', 'append the log to this file (JSON lines) instead of writing it to stderr')
    .addOption(
      new Option('--log-format <format>', 'pretty (for people; the default on a terminal) or json (otherwise)').choices(
        ['pretty', 'json'],
      ),
    );
}

/**
 * The VM's logger for these flags: pino at `--log-level` (else $VMM_LOG_LEVEL, else info), to `--log-file` (appended)
 * or stderr; lines for people where the output is a terminal (or `--log-format pretty`), JSON lines otherwise.
 * Writes are synchronous: nothing is lost when the VMM exits or is killed by its seccomp filter.
 */
export function cliLogger(flags: LogFlags, stderrIsTty = process.stderr.isTTY === true): Logger {
  const level = flags.logLevel ?? process.env.VMM_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new Error(`log level '${level}' is not one of ${LOG_LEVELS.join(', ')}`);
  const fd = flags.logFile !== undefined ? fs.openSync(flags.logFile, 'a', 0o640) : 2; // kept for the process's life
  const tty = flags.logFile === undefined && stderrIsTty;
  const pretty = flags.logFormat ? flags.logFormat === 'pretty' : tty;
  const stream = pretty
    ? { write: (line: string) => void fs.writeSync(fd, prettyLogLine(line, tty)) }
    : pino.destination({ fd, sync: true });
  return pino({ level, base: undefined }, stream) as unknown as Logger;
}
