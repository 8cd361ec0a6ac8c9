import { z } from 'zod';

/** The x86 plugin's `config:` block. */
export const X86ConfigSchema = z.strictObject({
  /**
   * How often (ms) the machine asks the vCPU runner whether every vCPU halted with
   * interrupts off (Linux's poweroff without ACPI); 0 turns it off.
   */
  haltPollMs: z.number().int().min(0).max(60_000).default(500),
  /**
   * ACPI tables (MADT for the CPUs and the IOAPIC, \_S5 + PM1 registers for poweroff)
   * besides the MP table. Kernels without CONFIG_X86_MPPARSE (Debian's cloud kernel)
   * see only one CPU and no IOAPIC without them.
   */
  acpi: z.boolean().default(true),
  /**
   * An ACPI fixed-feature power button (needs `acpi`): the FADT announces it, the PM1 registers carry its
   * status and enable bits and the SCI (IRQ 9) signals a press. SIGTERM/SIGINT then ask the guest to shut down
   * (Machine.powerButton) before stopping it hard after machine.shutdownTimeoutMs. The guest needs its ACPI
   * button driver (Linux: button.ko) and something that acts on the key (the guest kit's init does).
   */
  powerButton: z.boolean().default(false),
});

/** The validated x86 config (defaults filled). */
export type X86Config = z.output<typeof X86ConfigSchema>;
