import { z } from 'zod';

export const X86ConfigSchema = z.strictObject({
  /**
   * How often (ms) the machine asks the vCPU runner whether every vCPU halted with
   * interrupts off (Linux's poweroff without ACPI); 0 turns it off.
   */
  haltPollMs: z.number().int().min(0).max(60_000).default(250),
});

export type X86Config = z.output<typeof X86ConfigSchema>;
