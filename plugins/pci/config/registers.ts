/**
 * Offsets of the type 0 configuration header (PCI Local Bus 3.0, 6.1; PCI Express Base, 7.5.1):
 * what every function answers at the start of its configuration space.
 */
export const PciReg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  /** Programming interface (byte 0x09), sub-class (0x0a), base class (0x0b): the 24-bit class code. */
  CLASS_CODE: 0x09,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  /** BAR 0; BAR n is at BAR0 + 4 n (n = 0..5). */
  BAR0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  EXPANSION_ROM: 0x30,
  CAPABILITIES_POINTER: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
  /** First byte after the header: where capabilities go. */
  HEADER_END: 0x40,
} as const;

/** Command register bits (PCI 3.0, 6.2.2). */
export const PciCommand = {
  IO_SPACE: 1 << 0,
  MEMORY_SPACE: 1 << 1,
  BUS_MASTER: 1 << 2,
  PARITY_ERROR_RESPONSE: 1 << 6,
  SERR: 1 << 8,
  INTX_DISABLE: 1 << 10,
} as const;

/** The command bits a function lets the guest set: decode, bus master, error reporting, INTx disable. */
export const COMMAND_WRITABLE =
  PciCommand.IO_SPACE |
  PciCommand.MEMORY_SPACE |
  PciCommand.BUS_MASTER |
  PciCommand.PARITY_ERROR_RESPONSE |
  PciCommand.SERR |
  PciCommand.INTX_DISABLE;

/** Status register bits (PCI 3.0, 6.2.3). */
export const PciStatus = {
  /** The function's INTx is asserted (read only; set whether or not INTX_DISABLE masks the pin). */
  INTERRUPT: 1 << 3,
  /** The capability list at CAPABILITIES_POINTER is valid (read only). */
  CAPABILITIES_LIST: 1 << 4,
} as const;

/** The status register's error bits, cleared by writing 1 (RW1C): parity, aborts, SERR. */
export const STATUS_W1C = 0xf900;

/** Header type register: type 0 (an endpoint), bit 7 = multi-function device. */
export const HEADER_TYPE_MULTIFUNCTION = 0x80;

/** Capability ids (PCI Code and ID Assignment, 2). */
export const PciCapId = {
  POWER_MANAGEMENT: 0x01,
  MSI: 0x05,
  VENDOR_SPECIFIC: 0x09,
  PCI_EXPRESS: 0x10,
  MSIX: 0x11,
} as const;

/** BAR register low bits (PCI 3.0, 6.2.5.1). */
export const PciBarBits = {
  /** Bit 0: 1 = I/O space. */
  IO: 0x1,
  /** Bits 2:1 = 10b: a 64-bit memory BAR (takes this register and the next). */
  MEM_TYPE_64: 0x4,
  /** Bit 3: prefetchable memory. */
  PREFETCHABLE: 0x8,
  /** Address bits of a memory BAR register. */
  MEM_ADDRESS_MASK: 0xffff_fff0,
  /** Address bits of an I/O BAR register (16-bit decode: the upper half reads 0). */
  IO_ADDRESS_MASK: 0x0000_fffc,
} as const;

/** Number of BAR registers in a type 0 header. */
export const BAR_COUNT = 6;
