import { z } from 'zod';
import { VirtioTransportNameSchema } from '../../core/config/schema.js';

/** The virtio-vsock plugin's config (Firecracker's vsock: `guest_cid`, `uds_path`). */
export const VirtioVsockConfigSchema = z.strictObject({
  /** The guest's context id (3 and up). */
  guestCid: z.number().int().min(3).max(0xffff_fffe).default(3),
  /** The host side's Unix socket, relative to the YAML file: hosts connect here; guest port P is `<udsPath>_P`. */
  udsPath: z.string().min(1).max(100),
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
export type VirtioVsockConfig = z.output<typeof VirtioVsockConfigSchema>;
