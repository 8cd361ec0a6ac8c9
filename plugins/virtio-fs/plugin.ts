import type { PluginModule } from '../../core/plugin/plugin.js';
import { VirtioDeviceType } from '../../core/virtio/virtio.js';
import { vhostUserPlugin } from '../vhost-user/plugin-class.js';
import { VirtioFsConfigSchema, type VirtioFsConfig } from './config.js';
import { fsConfigSpace } from './shape.js';

/**
 * One virtio-fs device per plugin instance: the host folder virtiofsd shares appears in the guest under
 * `tag`. Queues: the high-priority queue, then `numRequestQueues` request queues, all served by virtiofsd.
 */
export const VirtioFsPlugin = vhostUserPlugin<VirtioFsConfig>((cfg) => ({
  describe: () => ({
    deviceType: VirtioDeviceType.fs,
    queueMaxSizes: Array.from({ length: 1 + cfg.numRequestQueues }, () => cfg.queueSize),
    allowedDeviceFeatures: 0n, // VIRTIO_FS_F_NOTIFICATION needs a notification queue: not offered
    config: fsConfigSpace(cfg.tag, cfg.numRequestQueues),
    shadowRings: cfg.shadowRings,
  }),
}));

/** The virtio-fs plugin: config schema and the injected root class. */
const plugin: PluginModule<VirtioFsConfig> = { configSchema: VirtioFsConfigSchema, main: VirtioFsPlugin };
export default plugin;
