import { z } from 'zod';
import { SerialError } from './errors.js';
import { RX_TRIGGER } from './registers.js';

export const SERIAL_STATE_VERSION = 1;

const u8 = z.number().int().min(0).max(0xff);

/** A 16550A's saved registers and RX FIFO. Saved state is untrusted input: every field is range-checked. */
export const SerialStateSchema = z.strictObject({
  version: z.literal(SERIAL_STATE_VERSION),
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
  rxFifo: z.array(u8),
});

export type SerialState = z.output<typeof SerialStateSchema>;

/** Validates saved state against the schema and this device's FIFO capacity. */
export function restoreSerialState(state: unknown, fifoCapacity: number): SerialState {
  const r = SerialStateSchema.safeParse(state);
  if (!r.success) {
    throw new SerialError('State', `invalid serial state: ${z.prettifyError(r.error)}`, { issues: r.error.issues });
  }
  const cap = r.data.fifoEnabled ? fifoCapacity : 1;
  if (r.data.rxFifo.length > cap) {
    throw new SerialError('State', `serial state holds ${r.data.rxFifo.length} RX bytes, more than the FIFO's ${cap}`, {
      length: r.data.rxFifo.length,
      capacity: cap,
    });
  }
  return r.data;
}
