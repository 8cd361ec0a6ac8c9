import { z } from 'zod';

/**
 * The PC's four standard COM ports. Their interrupt lines are the platform's facts: the
 * plugin asks the Interrupts service for the line named after the port ('COM1' is IRQ 4 on x86).
 */
export const COM_PORTS = {
  COM1: { base: 0x3f8 },
  COM2: { base: 0x2f8 },
  COM3: { base: 0x3e8 },
  COM4: { base: 0x2e8 },
} as const;

/** Where the UART's console goes: stdio, a file, a unix socket, or nowhere. */
export const ConsoleBackendSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('stdio'),
    /** Ctrl-A x quits the VMM; default: on when stdin is a terminal. */
    escape: z.boolean().optional().describe('Ctrl-A x quits the VMM; default: on when stdin is a terminal'),
  }),
  z.strictObject({
    kind: z.literal('file'),
    path: z.string().min(1).describe('file the guest output goes to, relative to the YAML file'),
    /** Stop writing (and count drops) after this many bytes; default 64 MiB. */
    maxBytes: z
      .number()
      .int()
      .positive()
      .max(Number.MAX_SAFE_INTEGER)
      .default(64 << 20)
      .describe('stop writing (and count drops) after this many bytes'),
  }),
  z.strictObject({
    kind: z.literal('unix-socket'),
    path: z.string().min(1).max(107).describe('Unix socket the VMM listens on for the console'),
  }),
  z.strictObject({ kind: z.literal('none') }),
]);

/** The serial plugin's config block: port, optional line override, console, RX FIFO size. */
export const SerialConfigSchema = z.strictObject({
  port: z.enum(['COM1', 'COM2', 'COM3', 'COM4']).default('COM1').describe('which legacy UART (I/O port and line)'),
  /** Overrides the port's standard line (e.g. COM3 beside COM1, both being IRQ 4 on x86 by default). */
  irq: z.number().int().min(0).max(23).optional().describe("overrides the port's standard interrupt line"),
  /**
   * Puts the UART on the MMIO bus at this guest-physical address (byte registers, reg-shift 0) instead of the
   * COM port's I/O ports: machines without port I/O (arm64). The port still names the interrupt line ('com1').
   */
  mmio: z
    .number()
    .int()
    .min(0)
    .max(2 ** 48)
    .optional()
    .describe("MMIO address of the UART's registers instead of the COM port's I/O ports (arm64)"),
  console: ConsoleBackendSchema.default({ kind: 'stdio' }).describe('where guest output goes and input comes from'),
  /** RX FIFO capacity while the guest has FIFOs enabled. */
  rxFifoSize: z.number().int().min(1).max(4096).default(64).describe('RX FIFO capacity while FIFOs are enabled'),
});

/** The validated serial config (defaults filled). */
export type SerialConfig = z.output<typeof SerialConfigSchema>;
/** One validated console back end. */
export type ConsoleBackendConfig = z.output<typeof ConsoleBackendSchema>;
