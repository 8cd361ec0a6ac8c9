import { VmmError } from '../errors.js';

/** Where a config error points: the file, the 1-based line and column when the YAML node is known, and the key. */
export interface ConfigErrorData {
  file: string;
  line?: number;
  column?: number;
  /** Dotted path of the offending key, e.g. 'machine.vcpus' or 'plugins[2].config.path'. */
  key?: string;
}

/** The one error class of core/config: where in which file, and what was wrong. */
export class ConfigError extends VmmError<'Read' | 'Syntax' | 'Invalid'> {
  constructor(
    kind: 'Read' | 'Syntax' | 'Invalid',
    readonly detail: string,
    readonly where: ConfigErrorData,
    options?: { cause?: unknown },
  ) {
    super(kind, ConfigError.format(detail, where), { ...where }, options);
  }

  static format(detail: string, w: ConfigErrorData): string {
    const pos = w.line !== undefined ? `${w.file}:${w.line}:${w.column ?? 1}` : w.file;
    // one line: a YAML complex key (`? {a: b}`) or a multi-line value would otherwise spill over several
    return `${pos}: ${w.key ? `${w.key}: ` : ''}${detail}`.replace(/\s*\n\s*/g, ' ');
  }
}
