/**
 * The hotplug controller's registers (one 32-bit register each, little endian, in a 16-byte MMIO window), as the
 * DSDT's PHPR device reads and writes them:
 *  - PCIU (read, clears on read): slots whose function was plugged in since the last read (bit n = slot n);
 *  - PCID (read, clears on read): slots the VMM wants removed (the guest answers with an eject) or that lost
 *    their function without one (surprise removal);
 *  - B0EJ (write): the guest ejected the slots whose bits are set (its _EJ0 method); reads 0;
 *  - PSEG (read/write): the PCI segment the other registers mean; only segment 0 exists.
 */
export const HotplugRegister = { PCIU: 0x0, PCID: 0x4, B0EJ: 0x8, PSEG: 0xc } as const;
/** Bytes of the register window. */
export const HOTPLUG_WINDOW_SIZE = 0x10;
/** Slots a hotplug notification can name: device numbers 1..31 on bus 0 (slot 0 is the host bridge). */
export const HOTPLUG_SLOTS = Array.from({ length: 31 }, (_, i) => i + 1);
