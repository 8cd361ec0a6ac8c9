import { z } from 'zod';
import { defineState } from '../../core/state/snapshottable.js';

/**
 * What a virtio-vsock device saves besides its queues: the guest CID and queue size (a device of
 * another shape refuses the state). Connections are host sockets and cannot be saved; after a restore
 * the driver gets a TRANSPORT_RESET event and its sockets see the reset (as with Firecracker).
 */
export const VsockStateSpec = defineState({
  name: 'virtio-vsock',
  version: 1,
  schema: z.strictObject({
    guestCid: z.number().int().min(3).max(0xffff_fffe),
    queueSize: z.number().int().min(4).max(32768),
  }),
});

/** The in-memory form of a vsock device's state. */
export type VsockState = z.output<typeof VsockStateSpec.schema>;
