import type { DependencyContainer } from 'tsyringe';
import type { PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { Qcow2Format } from './format.js';

/** Provides the 'qcow2' DiskFormat (beside 'raw'; the block device picks by name or probe). */
const plugin: PluginModule = {
  register(container: DependencyContainer) {
    container.register(Tokens.DiskFormat.token, { useValue: new Qcow2Format() });
  },
};
export default plugin;
