import type { PluginModule } from '../../core/plugin/plugin.js';
import { VirtioDeviceType } from '../../core/virtio/virtio.js';
import { vhostUserPlugin } from '../vhost-user/plugin-class.js';
import { VhostUserBlkConfigSchema, type VhostUserBlkConfig } from './config.js';
import { blkDeviceShape, VHOST_BLK_CONFIG_SIZE } from './shape.js';

/**
 * One vhost-user-blk disk per plugin instance: connects to the back end's socket, reads its virtio-blk
 * config space (GET_CONFIG) and features, and attaches the device to the chosen virtio transport; the back
 * end serves the queues from shared guest RAM.
 */
export const VhostUserBlkPlugin = vhostUserPlugin<VhostUserBlkConfig>((cfg, ctx) => ({
  configSize: VHOST_BLK_CONFIG_SIZE,
  describe: (backend) => ({
    deviceType: VirtioDeviceType.block,
    ...blkDeviceShape(backend, cfg.numQueues, cfg.queueSize, ctx.instance),
    shadowRings: cfg.shadowRings,
  }),
}));

/** The vhost-user-blk plugin: config schema and the injected root class. */
const plugin: PluginModule<VhostUserBlkConfig> = { configSchema: VhostUserBlkConfigSchema, main: VhostUserBlkPlugin };
export default plugin;
