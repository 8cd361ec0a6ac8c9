import { z } from 'zod';
import { RtcError } from './errors.js';
import { CMOS_SIZE, INDEX_MASK } from './registers.js';

export const RTC_STATE_VERSION = 1;

/** Saved RTC state; untrusted on restore. The clock offset is kept relative to host UTC. */
export const RtcStateSchema = z.strictObject({
  version: z.literal(RTC_STATE_VERSION),
  index: z.number().int().min(0).max(INDEX_MASK),
  nmiDisabled: z.boolean(),
  cmos: z.array(z.number().int().min(0).max(0xff)).length(CMOS_SIZE),
  /** About ±3000 years at most, so guest time stays a safe integer. */
  offsetMs: z.number().int().min(-1e14).max(1e14),
  frozen: z.boolean(),
  centuryWritten: z.boolean(),
});

export type RtcState = z.output<typeof RtcStateSchema>;

export function restoreRtcState(state: unknown): RtcState {
  const r = RtcStateSchema.safeParse(state);
  if (!r.success)
    throw new RtcError('State', `invalid rtc state: ${z.prettifyError(r.error)}`, { issues: r.error.issues });
  return r.data;
}
