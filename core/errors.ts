/**
 * The base of every error the framework throws. Each module defines one error
 * class deriving from this, carrying a `kind` and the data that explains it, and
 * chains the underlying failure through `cause`.
 */
export class VmmError<K extends string = string> extends Error {
  constructor(
    readonly kind: K,
    message: string,
    readonly data: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
