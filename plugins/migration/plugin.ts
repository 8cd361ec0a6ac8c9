import type { PluginModule } from '../../core/plugin/plugin.js';

/** The migration plugin needs no VM wiring yet: its functions (index.ts) and commands (cli.ts) act on a VM. */
const plugin: PluginModule = {};
export default plugin;
