import { ConfigError } from './errors.js';

/**
 * Several problems in one config, reported together (`vmm validate` lists every one). The message is the first
 * problem's plus how many more there are; `problems` holds each, one line apiece, in the order found.
 */
export class ConfigErrors extends ConfigError {
  /** `dropped`: problems found past the limit, counted but not kept (the last entry of `problems` says so). */
  constructor(problems: readonly ConfigError[], dropped = 0) {
    const first = problems[0];
    const more = problems.length - 1 + dropped;
    super(first.kind, `${first.detail} (and ${more} more)`, first.where, { cause: first });
    const file = first.where.file;
    this.problems = dropped
      ? [...problems, new ConfigError(first.kind, `${dropped} more problems not shown; fix these first`, { file })]
      : problems;
  }

  /** Every problem, one line each, in the order found. */
  readonly problems: readonly ConfigError[];
}

/** The most problems one validation reports (a hostile config could otherwise make one per list entry). */
export const MAX_PROBLEMS = 50;

/** Collects config problems so validation goes on and reports all of them at once (up to MAX_PROBLEMS). */
export class ConfigProblems {
  private readonly found: ConfigError[] = [];
  private readonly seen = new Set<string>();
  private dropped = 0;

  constructor(private readonly max = MAX_PROBLEMS) {}

  /**
   * Records a problem (the same message twice is kept once). Past the limit it is only counted: give a function
   * to skip building the error (finding its position in a large file) then.
   */
  add(err: ConfigError | (() => ConfigError)): void {
    if (this.full) {
      this.dropped++;
      return;
    }
    const e = typeof err === 'function' ? err() : err;
    if (this.seen.has(e.message)) return;
    this.seen.add(e.message);
    this.found.push(e);
  }

  /** Whether the limit is reached (later problems are only counted). */
  get full(): boolean {
    return this.found.length >= this.max;
  }

  /** How many problems were recorded. */
  get size(): number {
    return this.found.length;
  }

  /** The problems recorded so far. */
  get list(): readonly ConfigError[] {
    return this.found;
  }

  /** Throws the one problem, or a ConfigErrors holding all of them; returns when there is none. */
  throwIfAny(): void {
    if (this.found.length === 1 && this.dropped === 0) throw this.found[0];
    if (this.found.length > 0) throw new ConfigErrors([...this.found], this.dropped);
  }
}

/** Every problem an error stands for: a ConfigErrors' list, or the error itself. */
export const problemsOf = (err: Error): readonly Error[] => (err instanceof ConfigErrors ? err.problems : [err]);
