import { z } from 'zod';
import { I8042Error } from './errors.js';
import { OUTPUT_QUEUE_MAX } from './registers.js';

export const I8042_STATE_VERSION = 1;

const u8 = z.number().int().min(0).max(0xff);

/** The controller's saved state; validated on restore since a snapshot file may be hostile. */
export const I8042StateSchema = z.strictObject({
  version: z.literal(I8042_STATE_VERSION),
  ctr: u8,
  outputPort: u8,
  lastWasCommand: z.boolean(),
  pendingCommand: u8.nullable(),
  kbdPendingArg: u8.nullable(),
  output: z.array(u8).max(OUTPUT_QUEUE_MAX),
});

export type I8042State = z.output<typeof I8042StateSchema>;

export function restoreI8042State(state: unknown): I8042State {
  const r = I8042StateSchema.safeParse(state);
  if (!r.success)
    throw new I8042Error('State', `invalid i8042 state: ${z.prettifyError(r.error)}`, { issues: r.error.issues });
  return r.data;
}
