import { z } from 'zod';
import { defineState } from '../../core/state/snapshottable.js';

const Ms = z.number().min(0).max(1e12);

/** What a snapshot keeps: whether (and when) the guest reported its boot; a restored guest does not boot again. */
export const BootTimerStateSpec = defineState({
  name: 'boot timer',
  version: 1,
  schema: z.strictObject({
    markers: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    boot: z.strictObject({ ms: Ms, sinceProcessStartMs: Ms, sinceStartedMs: Ms.optional() }).nullable(),
  }),
});

/** The in-memory form of the boot timer's state. */
export type BootTimerState = z.output<typeof BootTimerStateSpec.schema>;
