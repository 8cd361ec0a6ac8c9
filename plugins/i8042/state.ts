import { z } from 'zod';
import { u8 } from '../../core/state/codecs.js';
import { defineState } from '../../core/state/snapshottable.js';
import { OUTPUT_QUEUE_MAX } from './registers.js';

/** The controller's saved state; validated on restore since a snapshot file may be hostile. */
export const I8042StateSpec = defineState({
  name: 'i8042 controller',
  version: 1,
  schema: z.strictObject({
    ctr: u8,
    outputPort: u8,
    lastWasCommand: z.boolean(),
    pendingCommand: u8.nullable(),
    kbdPendingArg: u8.nullable(),
    output: z.array(u8).max(OUTPUT_QUEUE_MAX),
  }),
});

/** The in-memory form of the controller's state. */
export type I8042State = z.output<typeof I8042StateSpec.schema>;
