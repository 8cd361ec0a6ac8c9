import { z } from 'zod';
import { VirtioTransportNameSchema } from '../../core/config/schema.js';
import { RateLimiterSchema } from '../../core/ratelimit/rate-limiter.js';

/**
 * One disk per plugin instance (list the plugin several times with `id:` for more
 * disks, e.g. id: vda / id: vdb). Paths are relative to the YAML file.
 */
export const VirtioBlkConfigSchema = z.strictObject({
  /** Image file or block device. */
  path: z.string().min(1).describe('image file or block device, relative to the YAML file'),
  readOnly: z.boolean().default(false).describe('the guest may not write (VIRTIO_BLK_F_RO)'),
  /** GET_ID answer, up to 20 printable ASCII characters; defaults to the instance name. */
  serial: z
    .string()
    .max(20)
    .regex(/^[\x20-\x7e]*$/, 'printable ASCII only')
    .optional()
    .describe('GET_ID answer (up to 20 printable characters); default: the instance name'),
  /** Open with O_DIRECT (bypass the host page cache); the guest then sees 4 KiB logical blocks. */
  direct: z.boolean().default(false).describe('open with O_DIRECT (the guest then sees 4 KiB blocks)'),
  numQueues: z.number().int().min(1).max(64).default(1).describe('request queues (multiqueue)'),
  queueSize: z
    .number()
    .int()
    .min(4)
    .max(32768)
    .refine((n) => (n & (n - 1)) === 0, 'a power of two')
    .default(256)
    .describe('descriptors per queue (a power of two)'),
  rateLimiter: RateLimiterSchema.optional().describe('token buckets for bandwidth and operations'),
  /**
   * Disk format. 'auto' probes the header with every other format and falls back to
   * raw; do not use it on writable images a guest controls (a guest could write a
   * qcow2 header into a raw disk and get it read as qcow2 next boot).
   */
  format: z
    .enum(['raw', 'qcow2', 'auto'])
    .default('raw')
    .describe("image format; 'auto' probes it (never on writable images a guest controls)"),
  /** For formats with backing files (qcow2): may the image name a backing file? */
  allowBacking: z.boolean().default(false).describe('may the image name a backing file (qcow2)'),
  /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
  transport: VirtioTransportNameSchema.optional().describe("virtio transport ('mmio', 'pci'); default: the VM's"),
});
/** One virtio-blk plugin instance's validated config (defaults filled in). */
export type VirtioBlkConfig = z.output<typeof VirtioBlkConfigSchema>;
