import { ConfigError } from './errors.js';

/**
 * Several problems in one config, reported together (`vmm validate` lists every one). The message is the first
 * problem's plus how many more there are; `problems` holds each, one line apiece, in the order found.
 */
export class ConfigErrors extends ConfigError {
  constructor(readonly problems: readonly ConfigError[]) {
    const first = problems[0];
    super(first.kind, `${first.detail} (and ${problems.length - 1} more)`, first.where, { cause: first });
  }
}

/** Collects config problems so validation goes on and reports all of them at once. */
export class ConfigProblems {
  private readonly found: ConfigError[] = [];
  private readonly seen = new Set<string>();

  /** Records a problem (the same message twice is kept once). */
  add(err: ConfigError): void {
    if (this.seen.has(err.message)) return;
    this.seen.add(err.message);
    this.found.push(err);
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
    if (this.found.length === 1) throw this.found[0];
    if (this.found.length > 1) throw new ConfigErrors([...this.found]);
  }
}

/** Every problem an error stands for: a ConfigErrors' list, or the error itself. */
export const problemsOf = (err: Error): readonly Error[] => (err instanceof ConfigErrors ? err.problems : [err]);
