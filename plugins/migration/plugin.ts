import 'reflect-metadata';
import * as path from 'node:path';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import type { Disposable } from '../../core/bus/bus.js';
import type { Logger } from '../../core/logger.js';
import type { PluginContext, PluginMain, PluginModule } from '../../core/plugin/plugin.js';
import { PLUGIN_CONFIG, PLUGIN_CONTEXT, PLUGIN_LOGGER } from '../../core/tokens.js';
import { ASSEMBLED_VM, type AssembledVm } from '../../core/vmm/assemble.js';
import { ControlServer } from './control.js';
import { incomingVm } from '../../core/vmm/incoming.js';

/** The migration plugin's `config:` block. */
export const MigrationConfigSchema = z.strictObject({
  /**
   * A Unix socket (relative to the YAML file) on which `vmm snapshot|migrate|pause|resume --control PATH` reach
   * this VM; none: the VM is only reached through the API or in-process calls.
   */
  control: z.string().min(1).max(107).optional(),
});

/** The validated migration config. */
export type MigrationConfig = z.output<typeof MigrationConfigSchema>;

/** Opens the control socket when the config names one; its Disposable closes it. */
@injectable()
export class MigrationPlugin implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: MigrationConfig,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<MigrationConfig>,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
    @inject(ASSEMBLED_VM) private readonly vm: AssembledVm,
  ) {}

  async attach(): Promise<Disposable[]> {
    if (!this.cfg.control) return [];
    const server = new ControlServer(path.resolve(this.ctx.baseDir, this.cfg.control), () => this.vm, this.logger);
    const released = incomingVm(this.ctx.vm)?.released;
    // A VM received from a source that still runs: the socket's path is the source's until it let go.
    if (released)
      void released
        .then(() => server.listen())
        .catch((err: unknown) => this.logger.warn({ err }, 'the control socket cannot listen'));
    else await server.listen();
    return [{ dispose: () => server.close() }];
  }
}

/** The migration plugin: an optional control socket; its functions (index.ts) and commands (cli.ts) need no wiring. */
const plugin: PluginModule<MigrationConfig> = { configSchema: MigrationConfigSchema, main: MigrationPlugin };
export default plugin;
