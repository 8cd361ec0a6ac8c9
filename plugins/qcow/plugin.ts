import 'reflect-metadata';
import { Lifecycle } from 'tsyringe';
import type { PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { Qcow2Format } from './format.js';

/**
 * Provides the 'qcow2' DiskFormat (beside 'raw'; the block device picks by name or probe): the class
 * is registered, one instance per VM built on first use.
 */
const plugin: PluginModule = {
  register(container) {
    container.register(Tokens.DiskFormat.token, { useClass: Qcow2Format }, { lifecycle: Lifecycle.ContainerScoped });
  },
};
export default plugin;
