import { z } from 'zod';

/** The kvm plugin's `config:` block. */
export const KvmConfigSchema = z.strictObject({
  /** The KVM character device. */
  devicePath: z.string().min(1).default('/dev/kvm'),
  /** How vCPU workers wake the main thread on PIO/MMIO exits (see README: both cost about the same here). */
  notify: z.enum(['eventfd', 'atomics']).default('eventfd'),
  /** Give the Vm a memory slot per GuestMemory region when it is created (mapGuestMemory; idempotent). */
  mapGuestMemory: z.boolean().default(true),
  /** Turn on dirty page logging on those slots (snapshots / migration). */
  dirtyLog: z.boolean().default(false),
  /** KVM_CAP_* names the host must have (short or full names); checked at registration. */
  requireCapabilities: z
    .array(z.string().regex(/^[A-Z0-9_]+$/))
    .default(['USER_MEMORY', 'IRQCHIP', 'IRQFD', 'IOEVENTFD', 'IMMEDIATE_EXIT']),
  /**
   * Create the in-kernel irqchip (PIC, IOAPIC, LAPICs) with the VM, before any device attaches
   * (irqfds need it). With it, a guest `hlt` is handled in the kernel and never reaches userspace.
   */
  irqchip: z.boolean().default(true),
  /**
   * Worker fast paths (runner/fast-path.ts): unclaimed ports and what devices publish (the UART's
   * THR/LSR/MSR) are handled on the vCPU's thread, without a hop to the main thread.
   */
  fastPath: z.boolean().default(true),
  /**
   * madvise(MADV_HUGEPAGE) on guest RAM when the Vm maps it (as QEMU does): fewer, larger
   * second-level page faults, which matter most nested (a fault there is an exit of the L1 kernel).
   * Best effort: hosts without THP ignore it. Off by default: in the nested sandbox one quiet boot
   * each showed no gain (init marker 52 s with, 38 s without, on a loaded 2-core host: noise).
   */
  transparentHugePages: z.boolean().default(false),
  /** Log the per-exit-kind statistics when the VM stops. */
  logExitStats: z.boolean().default(true),
});

/** The validated kvm plugin config (defaults filled). */
export type KvmConfig = z.output<typeof KvmConfigSchema>;
