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

/**
 * The `shadowRings` key of a vhost-user device plugin, with that device's default (VhostUserDeviceOptions.shadowRings:
 * `auto` puts the VMM on the data path of a back end without in-flight tracking, so that its restart loses nothing;
 * `off` leaves the data path to the back end, the guest's rings, ioeventfds and irqfds).
 */
export function shadowRingsKey(byDefault: ShadowRingsMode) {
  return z
    .enum(['auto', 'off'])
    .default(byDefault)
    .describe(
      'auto: a back end that cannot track in-flight requests (no INFLIGHT_SHMFD) works on shadow rings of the VMM, ' +
        'so its restart loses and repeats nothing, but every kick and completion passes through the VMM; off: the ' +
        "back end works on the guest's rings, kicks and interrupts bypass the VMM, and a restart resumes at the used " +
        'index (requests it had in flight may be lost or done twice)',
    );
}

/** Whether a back end without in-flight tracking gets shadow rings (`auto`) or the guest's own (`off`). */
export type ShadowRingsMode = 'auto' | 'off';
