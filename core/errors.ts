/**
 * The base of every error the framework throws. Each module defines one error
 * class deriving from this, carrying a `kind` and the data that explains it, and
 * chains the underlying failure through `cause`. The message is always one line
 * (see oneLine): it often embeds text from elsewhere (a plugin's error, a schema
 * message, a file's content) and the CLI prints it as `vmm: <message>`.
 */
export class VmmError<K extends string = string> extends Error {
  constructor(
    readonly kind: K,
    message: string,
    readonly data: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(oneLine(message), options);
    this.name = new.target.name;
  }
}

// eslint-disable-next-line no-control-regex -- finding control characters is what it is for
const CONTROL_CHARS = /[\u0000-\u0008\u000e-\u001f\u007f]/g;

/**
 * `text` on one line: line breaks (with the indentation around them) become one space,
 * other control characters (a terminal escape, NUL) are written as \u00XX.
 */
export function oneLine(text: string): string {
  return text
    .replace(/[ \t]*(?:\r\n|[\n\r\v\f\u2028\u2029])\s*/g, ' ')
    .replace(CONTROL_CHARS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\t/g, ' ');
}
