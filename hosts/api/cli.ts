import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunApi } from '../../core/cli/main.js';
import { createLogger } from '../../core/vmm/logger.js';
import { ApiError } from './errors.js';
import { JsonLinesEvents, parseEventMonitor, type EventSink } from './events.js';
import { startApiServer } from './server.js';
import { ApiVmm } from './vmm.js';
import { defaultExtensions } from './extensions.js';
import type { ApiHost } from './mapping.js';

/** tsvmm's version, from the package.json above this file (the plain tree or the bundle). */
export function vmmVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tsvmm' && pkg.version) return pkg.version;
    } catch {
      /* not here */
    }
  }
  return 'unknown';
}

const openEvents = (spec: string | undefined): EventSink | undefined =>
  spec ? new JsonLinesEvents(parseEventMonitor(spec)) : undefined;

/** `vmm run --api-socket`: the API for the VM that run assembles (CliHooks.startApi). */
export async function startRunApi(opts: { socketPath: string; eventMonitor?: string }): Promise<RunApi> {
  const events = openEvents(opts.eventMonitor);
  const vmm = new ApiVmm({ baseDir: process.cwd(), version: vmmVersion(), events, ext: defaultExtensions() });
  const logger = createLogger().child({ module: 'api' });
  const server = await startApiServer({
    socketPath: opts.socketPath,
    vmm,
    onError: (err, url) => logger.warn({ err, url }, 'API request failed'),
  });
  return {
    onStarted: (vm) => vmm.attach(vm),
    close: async () => {
      await server.close();
      await events?.close();
    },
  };
}

/** `vmm serve`'s options. */
export interface ServeOptions {
  apiSocket: string;
  eventMonitor?: string;
  force?: boolean;
  /** The host vm.create builds VMs on (default cloud). */
  host?: ApiHost;
}

/**
 * `vmm serve --api-socket PATH`: a VMM with no VM, driven through the API (vm.create, vm.boot, ...). Resolves with
 * the exit code once vmm.shutdown was answered (0) or a signal stopped it (130 / 143, the VM stopped first).
 */
export async function serve(opts: ServeOptions): Promise<number> {
  const events = openEvents(opts.eventMonitor);
  const logger = createLogger().child({ module: 'api' });
  const vmm = new ApiVmm({
    baseDir: process.cwd(),
    version: vmmVersion(),
    events,
    force: opts.force,
    host: opts.host,
    ext: defaultExtensions(),
  });
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  const server = await startApiServer({
    socketPath: opts.apiSocket,
    vmm,
    onExit: () => finish(0),
    onError: (err, url) => logger.warn({ err, url }, 'API request failed'),
  });
  events?.emit('vmm', 'starting', { socket: opts.apiSocket });
  const onSignal = (sig: NodeJS.Signals): void => {
    logger.info({ signal: sig }, 'stopping');
    void vmm
      .stopAll()
      .catch((err: unknown) => logger.error({ err }, 'stop failed'))
      .then(() => server.close())
      .then(() => finish(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const code = await done;
    events?.emit('vmm', 'shutdown');
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await events?.close();
  }
}

/** `vmm serve`'s action: serve(), with a bad option or a busy socket as one line and exit code 2. */
export async function serveCommand(opts: ServeOptions): Promise<number> {
  try {
    return await serve(opts);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    process.stderr.write(`vmm: serve: ${err.message}\n`);
    return 2;
  }
}
