import { z } from 'zod';
import { u8 } from '../../core/state/codecs.js';
import { defineState } from '../../core/state/snapshottable.js';
import { SerialError } from './errors.js';
import { RX_TRIGGER } from './registers.js';

/** A 16550A's saved registers and RX FIFO. Saved state is untrusted input: every field is range-checked. */
export const SerialStateSpec = defineState({
  name: '16550A UART',
  version: 1,
  schema: z.strictObject({
    ier: u8.max(0x0f),
    lcr: u8,
    mcr: u8.max(0x1f),
    scr: u8,
    divisor: z.number().int().min(0).max(0xffff),
    fifoEnabled: z.boolean(),
    rxTrigger: z
      .number()
      .int()
      .refine((v) => (RX_TRIGGER as readonly number[]).includes(v), 'one of 1, 4, 8, 14'),
    lsrErrors: u8,
    msrStatus: u8,
    msrDelta: u8.max(0x0f),
    thrPending: z.boolean(),
    /** Bounded by checkSerialState against the device's FIFO; this cap only stops huge input early. */
    rxFifo: z.array(u8).max(1 << 16),
  }),
});

/** The in-memory form of a UART's state. */
export type SerialState = z.output<typeof SerialStateSpec.schema>;

/** Refuses an RX FIFO longer than this device holds (its capacity with FIFOs on, 1 byte with them off). */
export function checkSerialState(s: SerialState, fifoCapacity: number): void {
  const cap = s.fifoEnabled ? fifoCapacity : 1;
  if (s.rxFifo.length > cap)
    throw new SerialError('State', `it holds ${s.rxFifo.length} RX bytes, more than the FIFO's ${cap}`, {
      length: s.rxFifo.length,
      capacity: cap,
    });
}
