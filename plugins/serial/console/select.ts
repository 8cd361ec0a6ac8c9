import * as path from 'node:path';
import type { ConsoleBackendConfig } from '../config.js';
import type { DropCounter, SerialConsole } from './console.js';
import { FileConsole } from './file.js';
import { NullConsole } from './none.js';
import { StdioConsole } from './stdio.js';
import { UnixSocketConsole } from './unix-socket.js';

/** What createSerialConsole needs besides the config: the folder paths are relative to and the callbacks. */
export interface ConsoleSelectContext {
  /** Relative paths in the config are resolved against this directory. */
  baseDir: string;
  dropped: DropCounter;
  /** What Ctrl-A x on a stdio terminal does. */
  onQuit: () => void;
}

/** Builds the console backend a config names (the one place that picks a mechanism). */
export async function createSerialConsole(
  cfg: ConsoleBackendConfig,
  ctx: ConsoleSelectContext,
): Promise<SerialConsole> {
  switch (cfg.kind) {
    case 'stdio':
      return new StdioConsole({ escape: cfg.escape, onQuit: ctx.onQuit, dropped: ctx.dropped });
    case 'file':
      return new FileConsole(path.resolve(ctx.baseDir, cfg.path), cfg.maxBytes, ctx.dropped);
    case 'unix-socket': {
      const c = new UnixSocketConsole(path.resolve(ctx.baseDir, cfg.path), { dropped: ctx.dropped });
      await c.listen();
      return c;
    }
    case 'none':
      return new NullConsole();
  }
}
