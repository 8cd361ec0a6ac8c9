import { z } from 'zod';
import { BootTimerError } from './errors.js';

export const BOOT_TIMER_STATE_VERSION = 1;

const Ms = z.number().min(0).max(1e12);

/** What a snapshot keeps: whether (and when) the guest reported its boot; a restored guest does not boot again. */
export const BootTimerStateSchema = z.strictObject({
  version: z.literal(BOOT_TIMER_STATE_VERSION),
  markers: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  boot: z.strictObject({ ms: Ms, sinceProcessStartMs: Ms, sinceStartedMs: Ms.optional() }).nullable(),
});

export type BootTimerState = z.output<typeof BootTimerStateSchema>;

export function restoreBootTimerState(state: unknown): BootTimerState {
  const r = BootTimerStateSchema.safeParse(state);
  if (!r.success)
    throw new BootTimerError('State', `invalid boot-timer state: ${z.prettifyError(r.error)}`, {
      issues: r.error.issues,
    });
  return r.data;
}
