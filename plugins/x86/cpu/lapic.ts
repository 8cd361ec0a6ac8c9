/** Local APIC register offsets inside the 1 KiB KVM_GET_LAPIC page. */
export const LAPIC_LVT_LINT0 = 0x350;
/** LVT LINT1 register offset (wired to NMI on a PC). */
export const LAPIC_LVT_LINT1 = 0x360;
/** LVT delivery mode ExtINT: the interrupt comes from the 8259 PIC (LINT0 on a PC). */
export const DELIVERY_EXTINT = 7;
/** LVT delivery mode NMI. */
export const DELIVERY_NMI = 4;

const setDeliveryMode = (reg: number, mode: number): number => ((reg & ~0x700) | (mode << 8)) >>> 0;

/**
 * Virtual-wire mode as a PC BIOS leaves it: LINT0 delivers the PIC's interrupts
 * (ExtINT), LINT1 delivers NMIs. Returns a modified copy of the page.
 */
export function withVirtualWire(lapic: Uint8Array): Uint8Array {
  if (lapic.length < LAPIC_LVT_LINT1 + 4) throw new RangeError(`a LAPIC page of ${lapic.length} bytes is too short`);
  const out = new Uint8Array(lapic);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(LAPIC_LVT_LINT0, setDeliveryMode(dv.getUint32(LAPIC_LVT_LINT0, true), DELIVERY_EXTINT), true);
  dv.setUint32(LAPIC_LVT_LINT1, setDeliveryMode(dv.getUint32(LAPIC_LVT_LINT1, true), DELIVERY_NMI), true);
  return out;
}
