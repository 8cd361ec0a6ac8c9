import { z } from 'zod';
import { Size, VirtioTransportNameSchema } from '../../core/config/schema.js';

/** The virtio-balloon plugin's config (one balloon per VM). */
export const VirtioBalloonConfigSchema = z.strictObject({
  /** How much guest memory the balloon should hold at start (bytes or '256M'); 0 = deflated. */
  target: Size.default(0n),
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may take pages back under memory pressure. */
  deflateOnOom: z.boolean().default(false),
  /** Offer the statistics queue; stats are asked for every `statsIntervalS` seconds (0: only on request). */
  stats: z.boolean().default(true),
  statsIntervalS: z.number().int().min(0).max(3600).default(0),
  /** Offer free page reporting: the guest hands back free memory without inflating. */
  freePageReporting: z.boolean().default(true),
  /** Size of each queue. */
  queueSize: z
    .number()
    .int()
    .min(4)
    .max(32768)
    .refine((n) => (n & (n - 1)) === 0, 'a power of two')
    .default(256),
  /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
  transport: VirtioTransportNameSchema.optional(),
});
/** The validated config. */
export type VirtioBalloonConfig = z.output<typeof VirtioBalloonConfigSchema>;
