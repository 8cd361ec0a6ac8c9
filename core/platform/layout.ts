/**
 * The platform facts a machine (arch) plugin registers under `Tokens.PlatformLayout`: which interrupt
 * lines devices may be given, the fixed lines of legacy devices, the guest-physical window device MMIO
 * is allocated from, and fixed device windows. Core and device plugins read these instead of hard-coding
 * one architecture's numbers.
 */
export interface PlatformLayout {
  /** The architecture these facts describe (e.g. the machine plugin's `arch` name). */
  readonly arch: string;
  /** Interrupt lines the allocator hands out to devices: first..last inclusive, never `reserved`. */
  readonly deviceIrqs: { readonly first: number; readonly last: number; readonly reserved: readonly number[] };
  /** Fixed interrupt lines of legacy devices by name (e.g. `com1`, `com2`, `rtc`, `keyboard`). */
  readonly legacyIrqs: Readonly<Record<string, number>>;
  /** The guest-physical window device MMIO windows are allocated from: [start, end). */
  readonly mmio32: { readonly start: bigint; readonly end: bigint };
  /** Device windows at fixed guest-physical addresses, by device name (e.g. `boot-timer`). */
  readonly fixed: Readonly<Record<string, { readonly start: bigint; readonly size: bigint }>>;
}
