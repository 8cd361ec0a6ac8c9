import { z } from 'zod';
import { defineState } from '../../core/state/snapshottable.js';
import { formatMac, parseMac } from './config-space.js';
import { CONFIG_MAX_QUEUE_PAIRS, GUEST_OFFLOAD_MASK, MAX_MAC_TABLE_ENTRIES } from './constants.js';

/** A MAC address, saved as 'xx:xx:xx:xx:xx:xx'. */
const mac = z.codec(
  z.string().refine((s) => parseMac(s) !== undefined, 'not a MAC address'),
  z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length === 6, 'six bytes'),
  { decode: (s) => parseMac(s)!, encode: (m) => formatMac(m) },
);

/** The guest offloads the driver set, saved as a hex string. */
const guestOffloads = z.codec(
  z.string().regex(/^0x[0-9a-f]{1,16}$/),
  z.bigint().refine((b) => b >= 0n && (b & ~GUEST_OFFLOAD_MASK) === 0n, 'only guest offload bits'),
  { decode: (s) => BigInt(s), encode: (b) => `0x${b.toString(16)}` },
);

/**
 * What a virtio-net device keeps across snapshot/restore besides its queues (which the transport
 * saves, nesting this state): identity, link, and what the driver set over the control queue.
 * Saved state is untrusted input: every field is validated on restore.
 */
export const NetStateSpec = defineState({
  name: 'virtio-net',
  version: 1,
  schema: z.strictObject({
    mac,
    linkUp: z.boolean(),
    announce: z.boolean(),
    activePairs: z.number().int().min(1).max(CONFIG_MAX_QUEUE_PAIRS),
    guestOffloads,
    rxMode: z.strictObject({
      promisc: z.boolean(),
      allmulti: z.boolean(),
      alluni: z.boolean(),
      nomulti: z.boolean(),
      nouni: z.boolean(),
      nobcast: z.boolean(),
    }),
    macTable: z.strictObject({
      unicast: z.array(mac).max(MAX_MAC_TABLE_ENTRIES),
      multicast: z.array(mac).max(MAX_MAC_TABLE_ENTRIES),
    }),
  }),
});

/** The in-memory form of a virtio-net device's state. */
export type NetState = z.output<typeof NetStateSpec.schema>;
