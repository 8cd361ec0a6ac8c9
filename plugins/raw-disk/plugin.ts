import type { DependencyContainer } from 'tsyringe';
import type { PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { RawDiskFormat } from './raw-format.js';

/** Provides the 'raw' DiskFormat (several DiskFormat providers may coexist; virtio-blk picks by name). */
const plugin: PluginModule = {
  register(container: DependencyContainer) {
    container.register(Tokens.DiskFormat.token, { useValue: new RawDiskFormat() });
  },
};
export default plugin;
