/**
 * The x86_64 guest-physical layout shared by the machine, the kvm backend's x86 part and the guest kit. Device plugins
 * read the part they need through `Tokens.PlatformLayout` (platform/resource-layout.ts x86PlatformLayout). RAM fills
 * [0, MMIO32_START); RAM beyond that continues at 4 GiB.
 */
export const X86Layout = {
  /** Real-mode IVT/BDA and EBDA stay below this; the zero page and cmdline go above. */
  ZERO_PAGE: 0x7000n,
  /** PVH start info. */
  PVH_INFO: 0x6000n,
  /** Boot GDT and IDT. */
  BOOT_GDT: 0x500n,
  BOOT_IDT: 0x520n,
  /** Identity page tables: PML4, PDPT, PDs. */
  PML4: 0x9000n,
  PDPTE: 0xa000n,
  PDE: 0xb000n,
  /** Kernel command line (max CMDLINE_MAX bytes, NUL included). */
  CMDLINE: 0x20000n,
  CMDLINE_MAX: 0x10000,
  /** MP table (floating pointer + config table) in the EBDA. */
  EBDA_START: 0x9fc00n,
  /** The protected-mode kernel is loaded here. */
  HIGH_MEMORY: 0x100000n,
  /** Start of the 32-bit MMIO hole; RAM above this is relocated to 4 GiB. */
  MMIO32_START: 0xc000_0000n,
  MMIO32_END: 0xfec0_0000n,
  IOAPIC: 0xfec0_0000n,
  /** KVM's TSS (3 pages) and identity-map page, just below the IOAPIC window on Intel. */
  KVM_TSS: 0xfffb_d000n,
  KVM_IDENTITY_MAP: 0xfffb_c000n,
  LAPIC: 0xfee0_0000n,
  /** The boot-time marker device (Firecracker's boot timer; plugins/boot-timer defines the byte the guest writes). */
  BOOT_TIMER: 0xd000_0000n,
  BOOT_TIMER_SIZE: 0x1000n,
  /** Where the MMIO allocator starts handing out windows (after the boot timer). */
  MMIO_ALLOC_START: 0xd000_1000n,
  /** Legacy interrupt lines. */
  IRQ_COM1: 4,
  IRQ_COM2: 3,
  IRQ_RTC: 8,
  IRQ_KEYBOARD: 1,
  /** First GSI the allocator hands out to devices (5..23 on the IOAPIC, skipping 8). */
  IRQ_ALLOC_START: 5,
  IRQ_ALLOC_END: 23,
} as const;
