import { z } from 'zod';
import { u8 } from '../../core/state/codecs.js';
import { defineState } from '../../core/state/snapshottable.js';
import { CMOS_SIZE, INDEX_MASK } from './registers.js';

/** Saved RTC state; untrusted on restore. The clock offset is kept relative to host UTC. */
export const RtcStateSpec = defineState({
  name: 'CMOS RTC',
  version: 1,
  schema: z.strictObject({
    index: z.number().int().min(0).max(INDEX_MASK),
    nmiDisabled: z.boolean(),
    cmos: z.array(u8).length(CMOS_SIZE),
    /** About ±3000 years at most, so guest time stays a safe integer. */
    offsetMs: z.number().int().min(-1e14).max(1e14),
    frozen: z.boolean(),
    centuryWritten: z.boolean(),
  }),
});

/** The in-memory form of the RTC's state. */
export type RtcState = z.output<typeof RtcStateSpec.schema>;
