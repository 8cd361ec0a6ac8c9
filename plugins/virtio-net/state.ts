import { z } from 'zod';
import { parseMac } from './config-space.js';
import { CONFIG_MAX_QUEUE_PAIRS, GUEST_OFFLOAD_MASK, MAX_MAC_TABLE_ENTRIES } from './constants.js';

const mac = z.string().transform((s, ctx) => {
  const m = parseMac(s);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `'${s}' is not a MAC address` });
    return z.NEVER;
  }
  return m;
});

/**
 * What a virtio-net device keeps across snapshot/restore besides its queues (which the
 * transport saves): identity, link, and what the driver set over the control queue.
 * Saved state is untrusted input: every field is validated on restore.
 */
export const NetStateSchema = z.strictObject({
  version: z.literal(1),
  mac,
  linkUp: z.boolean(),
  announce: z.boolean(),
  activePairs: z.number().int().min(1).max(CONFIG_MAX_QUEUE_PAIRS),
  guestOffloads: z
    .string()
    .regex(/^0x[0-9a-f]{1,16}$/)
    .transform((s) => BigInt(s))
    .refine((b) => (b & ~GUEST_OFFLOAD_MASK) === 0n, 'only guest offload bits'),
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
});

/** The saved form (JSON-ready strings). */
export type NetState = z.input<typeof NetStateSchema>;
