import { z } from 'zod';
import { VirtioTransportNameSchema } from '../../core/config/schema.js';

/** The config keys every vhost-user device plugin has: the back end's socket, queue size, reconnect, transport. */
export const VhostUserCommonConfig = {
  /** The back end's vhost-user Unix socket, relative to the YAML file. */
  socket: z.string().min(1),
  queueSize: z
    .number()
    .int()
    .min(4)
    .max(1024)
    .refine((n) => (n & (n - 1)) === 0, 'a power of two')
    .default(128),
  /** Milliseconds between reconnect attempts after the back end went away. */
  reconnectMs: z.number().int().min(10).max(60000).default(200),
  /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
  transport: VirtioTransportNameSchema.optional(),
};
