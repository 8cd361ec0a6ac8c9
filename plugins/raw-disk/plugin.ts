import 'reflect-metadata';
import { Lifecycle } from 'tsyringe';
import type { PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { RawDiskFormat } from './raw-format.js';

/**
 * Provides the 'raw' DiskFormat (several DiskFormat providers may coexist; virtio-blk picks by name):
 * the class is registered, one instance per VM built on first use.
 */
const plugin: PluginModule = {
  register(container) {
    container.register(Tokens.DiskFormat.token, { useClass: RawDiskFormat }, { lifecycle: Lifecycle.ContainerScoped });
  },
};
export default plugin;
