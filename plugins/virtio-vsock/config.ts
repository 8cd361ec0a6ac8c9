import { z } from 'zod';
import { VirtioTransportNameSchema } from '../../core/config/schema.js';

/**
 * The virtio-vsock plugin's config. Back end `unix` (default): Firecracker's host side (`guest_cid`, `uds_path`);
 * `vhost`: the host kernel's vhost-vsock (QEMU's vhost-vsock device), host processes use AF_VSOCK sockets.
 */
export const VirtioVsockConfigSchema = z
  .strictObject({
    /** The guest's context id (3 and up). */
    guestCid: z.number().int().min(3).max(0xffff_fffe).default(3),
    /** Who serves the queues: this process over Unix sockets, or the host kernel (vhost_vsock). */
    backend: z.enum(['unix', 'vhost']).default('unix'),
    /** unix: the host side's Unix socket, relative to the YAML file; guest port P is `<udsPath>_P`. */
    udsPath: z.string().min(1).max(100).optional(),
    /** vhost: the kernel's device. */
    vhostDevice: z.string().min(1).default('/dev/vhost-vsock'),
    queueSize: z
      .number()
      .int()
      .min(4)
      .max(32768)
      .refine((n) => (n & (n - 1)) === 0, 'a power of two')
      .default(256),
    /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
    transport: VirtioTransportNameSchema.optional(),
  })
  .refine((c) => c.backend !== 'unix' || c.udsPath !== undefined, {
    message: "the unix back end needs udsPath (or set backend: vhost for the kernel's vhost-vsock)",
    path: ['udsPath'],
  });
/** The validated config. */
export type VirtioVsockConfig = z.output<typeof VirtioVsockConfigSchema>;
