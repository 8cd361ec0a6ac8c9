import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError, hex } from '../errors.js';
import { IOAPIC_PINS, MPTABLE_MAX_VCPUS } from './mptable.js';

/**
 * Minimal ACPI: RSDP -> XSDT -> FADT (-> DSDT) + MADT. Kernels built without
 * CONFIG_X86_MPPARSE (Debian's cloud kernel among them) find CPUs and the IOAPIC only
 * through the MADT; the MP table is still written for kernels without ACPI.
 *
 * Why not hardware-reduced ACPI (Firecracker, QEMU microvm): Linux then drops the legacy
 * PIC and numbers IOAPIC interrupts dynamically, so IRQ numbers stop being GSIs and every
 * device would have to be described in the DSDT (the command line's virtio_mmio.device=
 * IRQs, the 8250's IRQ 4, the i8042's IRQ 1 would all break). A full FADT keeps Linux's
 * legacy IRQ domain: IRQ n = GSI n = IOAPIC pin n, as KVM's default routing wires them.
 * It needs a PM1a event/control block, which plugins/x86/platform/pm.ts provides.
 *
 * What Linux does with these tables:
 *  - FADT: SMI_CMD 0 (already in ACPI mode), SCI on IRQ 9 (nothing raises it), PM1a blocks
 *    at PM1_EVT_PORT / PM1_CNT_PORT, no PM timer, no GPE block, no fixed buttons; IAPC boot
 *    flags say an i8042 is present (else Linux drops the i8042 driver) and the CMOS RTC is.
 *  - MADT: one enabled LAPIC per vCPU (APIC id = vCPU index), the IOAPIC (GSI base 0),
 *    an override for the SCI (IRQ 9 edge/active-high, so a device may share GSI 9), LINT1 = NMI.
 *    ISA IRQs 0..15 get Linux's identity defaults.
 *  - DSDT: \_S5 (SLP_TYP 5: the PM device turns SLP_EN into a poweroff) and one PNP0C02
 *    device whose _CRS claims GSIs 16..23, so PNP-ACPI maps them (IRQ = GSI) for devices
 *    given those IRQs on the command line.
 * Everything lives in [ACPI_START, ACPI_END), inside the e820-reserved legacy area.
 */
export const ACPI_START = 0xe_0000n;
export const ACPI_END = 0xf_0000n;

const HEADER_SIZE = 36;
const RSDP_SIZE = 36;
const FADT_SIZE = 276;
const OEM_ID = 'TSVMM ';
const OEM_TABLE_ID = 'TSVMMX86';
const CREATOR_ID = 'TSVM';

export const FADT_FLAGS = {
  WBINVD: 1 << 0,
  PWR_BUTTON: 1 << 4,
  SLP_BUTTON: 1 << 5,
  HW_REDUCED_ACPI: 1 << 20,
} as const;
export const IAPC_BOOT_ARCH = {
  LEGACY_DEVICES: 1 << 0,
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  MSI_NOT_SUPPORTED: 1 << 3,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;
export const MADT_TYPE = { LAPIC: 0, IOAPIC: 1, ISO: 2, LAPIC_NMI: 4 } as const;
/** MPS INTI flags: polarity active high (01), trigger edge (01 << 2). */
export const INTI_EDGE_HIGH = 0x5;
/** ISA IRQs; GSIs above are claimed through the DSDT. */
export const ISA_IRQS = 16;
/** The SCI: nothing raises it; an edge/active-high override lets a device share GSI 9. */
export const SCI_IRQ = 9;
/** PM1a event block (status + enable, 2 bytes each) and control block (2 bytes). */
export const PM1_EVT_PORT = 0x600;
export const PM1_EVT_LEN = 4;
export const PM1_CNT_PORT = 0x604;
export const PM1_CNT_LEN = 2;
/** SLP_TYP the DSDT's \_S5 announces. */
export const S5_SLP_TYP = 5;

export interface AcpiOptions {
  vcpus: number;
  /** virtio-mmio windows to describe in the DSDT (in this order). */
  mmioDevices?: readonly AcpiMmioDevice[];
}

export interface AcpiTables {
  /** Where the RSDP is (hvm_start_info.rsdp_paddr, boot_params.acpi_rsdp_addr). */
  rsdp: bigint;
  /** The bytes to write at ACPI_START. */
  image: Uint8Array;
}

const sum8 = (b: Uint8Array): number => b.reduce((s, x) => (s + x) & 0xff, 0);
const checksumOf = (b: Uint8Array): number => (0x100 - sum8(b)) & 0xff;

function ascii(dst: Uint8Array, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) dst[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** A table: the standard 36-byte header (checksum filled in) followed by `body`. */
function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(HEADER_SIZE + body.length);
  const dv = new DataView(t.buffer);
  ascii(t, 0, signature, 4);
  dv.setUint32(4, t.length, true);
  t[8] = revision;
  ascii(t, 10, OEM_ID, 6);
  ascii(t, 16, OEM_TABLE_ID, 8);
  dv.setUint32(24, 1, true); // OEM revision
  ascii(t, 28, CREATOR_ID, 4);
  dv.setUint32(32, 1, true); // creator revision
  t.set(body, HEADER_SIZE);
  t[9] = checksumOf(t);
  return t;
}

// ---- AML (the DSDT's one device) ----

/** PkgLength: the encoded length counts itself and what follows (1 to 4 bytes, up to 2^28). */
function pkgLength(contentLen: number): number[] {
  if (contentLen + 1 < 0x40) return [contentLen + 1];
  for (let n = 2; n <= 4; n++) {
    const total = contentLen + n;
    if (total < 2 ** (4 + 8 * (n - 1))) {
      const out = [((n - 1) << 6) | (total & 0xf)];
      for (let i = 1; i < n; i++) out.push((total >> (4 + 8 * (i - 1))) & 0xff);
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentLen} bytes is too long`);
}
const nameSeg = (s: string): number[] => [...s.padEnd(4, '_')].map((c) => c.charCodeAt(0));
const STRING_PREFIX = 0x0d;
const NAME_OP = 0x08,
  SCOPE_OP = 0x10,
  BUFFER_OP = 0x11,
  PACKAGE_OP = 0x12,
  BYTE_PREFIX = 0x0a,
  DWORD_PREFIX = 0x0c,
  ZERO_OP = 0x00,
  EXT_OP = 0x5b,
  DEVICE_OP = 0x82;

/** Extended Interrupt descriptor (consumer, edge, active high, exclusive) + end tag. */
function interruptResources(gsis: readonly number[]): number[] {
  const len = 2 + 4 * gsis.length;
  const out = [0x89, len & 0xff, len >> 8, 0x03, gsis.length];
  for (const g of gsis) out.push(g & 0xff, (g >> 8) & 0xff, (g >> 16) & 0xff, (g >>> 24) & 0xff);
  out.push(0x79, 0x00); // end tag, checksum 0 = "treat as correct"
  return out;
}

/** Memory32Fixed(ReadWrite, base, length) descriptor. */
function memory32Fixed(base: bigint, length: bigint): number[] {
  if (base + length > 1n << 32n)
    throw new X86BootError(
      'MemoryLayout',
      `MMIO window ${hex(base)}+${length} is above 4 GiB; Memory32Fixed cannot describe it`,
      { base, length },
    );
  const le32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
  return [0x86, 9, 0, 0x01, ...le32(Number(base)), ...le32(Number(length))];
}

/** Device(name) { _HID, _UID, _CRS } as AML; `hid` is an EISA id (number) or a string. */
function deviceAml(name: string, hid: number | string, uid: number, crs: number[]): number[] {
  const hidBytes =
    typeof hid === 'number'
      ? [DWORD_PREFIX, hid & 0xff, (hid >> 8) & 0xff, (hid >> 16) & 0xff, (hid >>> 24) & 0xff]
      : [STRING_PREFIX, ...[...hid].map((c) => c.charCodeAt(0)), 0];
  const buffer =
    crs.length < 0x100 ? [BYTE_PREFIX, crs.length, ...crs] : [0x0b, crs.length & 0xff, crs.length >> 8, ...crs];
  const body = [
    ...nameSeg(name),
    NAME_OP,
    ...nameSeg('_HID'),
    ...hidBytes,
    NAME_OP,
    ...nameSeg('_UID'),
    ...(uid === 0 ? [ZERO_OP] : [BYTE_PREFIX, uid]),
    NAME_OP,
    ...nameSeg('_CRS'),
    BUFFER_OP,
    ...pkgLength(buffer.length),
    ...buffer,
  ];
  return [EXT_OP, DEVICE_OP, ...pkgLength(body.length), ...body];
}

/** A virtio-mmio window for the DSDT: Linux's virtio_mmio driver matches `LNRO0005`. */
export interface AcpiMmioDevice {
  base: bigint;
  size: bigint;
  gsi: number;
}

/** At most this many virtio-mmio nodes (two hex digits in the node names VR00..VRFF). */
export const MAX_ACPI_MMIO_DEVICES = 256;

/**
 * Name(\_S5, Package() { S5_SLP_TYP, S5_SLP_TYP, 0, 0 })
 * Scope(\_SB) {
 *   Device(GSIS) { _HID PNP0C02, _UID 0, _CRS { Interrupt {gsis} } }
 *   Device(VRnn) { _HID "LNRO0005", _UID nn, _CRS { Memory32Fixed(base, size), Interrupt {gsi} } } ...
 * }
 */
export function dsdtAml(gsis: readonly number[], mmio: readonly AcpiMmioDevice[] = []): Uint8Array {
  if (mmio.length > MAX_ACPI_MMIO_DEVICES) {
    throw new X86BootError(
      'MemoryLayout',
      `${mmio.length} virtio-mmio devices; the DSDT describes at most ${MAX_ACPI_MMIO_DEVICES}`,
      { count: mmio.length },
    );
  }
  const s5Elems = [4, BYTE_PREFIX, S5_SLP_TYP, BYTE_PREFIX, S5_SLP_TYP, ZERO_OP, ZERO_OP];
  const s5 = [NAME_OP, 0x5c, ...nameSeg('_S5_'), PACKAGE_OP, ...pkgLength(s5Elems.length), ...s5Elems];
  const devices = [deviceAml('GSIS', 0x020cd041 /* EisaId("PNP0C02") */, 0, interruptResources(gsis))];
  mmio.forEach((d, i) => {
    const name = `VR${i.toString(16).toUpperCase().padStart(2, '0')}`;
    devices.push(deviceAml(name, 'LNRO0005', i, [...memory32Fixed(d.base, d.size), ...interruptResources([d.gsi])]));
  });
  const scope = [0x5c, ...nameSeg('_SB_'), ...devices.flat()];
  return Uint8Array.from([...s5, SCOPE_OP, ...pkgLength(scope.length), ...scope]);
}

function fadtBody(dsdt: bigint): Uint8Array {
  const b = new Uint8Array(FADT_SIZE - HEADER_SIZE);
  const dv = new DataView(b.buffer);
  const at = (off: number): number => off - HEADER_SIZE;
  dv.setUint32(at(40), Number(dsdt), true); // DSDT
  dv.setUint16(at(46), SCI_IRQ, true); // SCI_INT
  dv.setUint32(at(48), 0, true); // SMI_CMD: none, the platform is in ACPI mode
  dv.setUint32(at(56), PM1_EVT_PORT, true); // PM1a_EVT_BLK
  dv.setUint32(at(64), PM1_CNT_PORT, true); // PM1a_CNT_BLK
  b[at(88)] = PM1_EVT_LEN;
  b[at(89)] = PM1_CNT_LEN;
  dv.setUint16(at(96), 101, true); // P_LVL2_LAT > 100: no C2
  dv.setUint16(at(98), 1001, true); // P_LVL3_LAT > 1000: no C3
  b[at(108)] = 0x32; // CENTURY: the CMOS century register
  dv.setUint16(
    at(109),
    IAPC_BOOT_ARCH.LEGACY_DEVICES |
      IAPC_BOOT_ARCH.I8042 |
      IAPC_BOOT_ARCH.VGA_NOT_PRESENT |
      IAPC_BOOT_ARCH.MSI_NOT_SUPPORTED,
    true,
  );
  dv.setUint32(at(112), FADT_FLAGS.WBINVD | FADT_FLAGS.PWR_BUTTON | FADT_FLAGS.SLP_BUTTON, true);
  b[at(131)] = 0; // FADT minor version (ACPI 6.0)
  dv.setBigUint64(at(140), dsdt, true); // X_DSDT (the X_ PM blocks stay 0: ACPICA converts the 32-bit ones)
  ascii(b, at(268), 'TSVMMKVM', 8); // hypervisor vendor identity
  return b;
}

function madtBody(vcpus: number): Uint8Array {
  const ioapicId = vcpus; // after the CPUs, as in the MP table
  const size = 8 + vcpus * 8 + 12 + 10 + 6;
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Number(X86Layout.LAPIC), true);
  dv.setUint32(4, 1, true); // PCAT_COMPAT: dual 8259s (KVM's in-kernel PIC)
  let p = 8;
  for (let i = 0; i < vcpus; i++) {
    b[p] = MADT_TYPE.LAPIC;
    b[p + 1] = 8;
    b[p + 2] = i;
    b[p + 3] = i;
    dv.setUint32(p + 4, 1, true); // enabled
    p += 8;
  }
  b[p] = MADT_TYPE.IOAPIC;
  b[p + 1] = 12;
  b[p + 2] = ioapicId;
  b[p + 3] = 0;
  dv.setUint32(p + 4, Number(X86Layout.IOAPIC), true);
  dv.setUint32(p + 8, 0, true); // GSI base
  p += 12;
  b[p] = MADT_TYPE.ISO;
  b[p + 1] = 10;
  b[p + 2] = 0;
  b[p + 3] = SCI_IRQ;
  dv.setUint32(p + 4, SCI_IRQ, true);
  dv.setUint16(p + 8, INTI_EDGE_HIGH, true);
  p += 10;
  b[p] = MADT_TYPE.LAPIC_NMI;
  b[p + 1] = 6;
  b[p + 2] = 0xff; // every processor
  dv.setUint16(p + 3, 0, true);
  b[p + 5] = 1; // LINT1
  return b;
}

/** Lays out RSDP, XSDT, FADT, DSDT and MADT from `base` (16-byte aligned, each table 8-byte aligned). */
export function buildAcpiTables(o: AcpiOptions, base: bigint = ACPI_START): AcpiTables {
  if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > MPTABLE_MAX_VCPUS) {
    throw new X86BootError(
      'TooManyVcpus',
      `the MADT describes 1..${MPTABLE_MAX_VCPUS} vCPUs (xAPIC ids), not ${o.vcpus}`,
      { vcpus: o.vcpus, max: MPTABLE_MAX_VCPUS },
    );
  }
  if (base % 16n !== 0n)
    throw new X86BootError('MemoryLayout', `the RSDP must be 16-byte aligned, not at ${hex(base)}`, { base });
  const align8 = (n: number): number => (n + 7) & ~7;
  const gsis = Array.from({ length: IOAPIC_PINS - ISA_IRQS }, (_, i) => ISA_IRQS + i);
  const dsdt = sdt('DSDT', 2, dsdtAml(gsis, o.mmioDevices ?? []));
  const madt = sdt('APIC', 4, madtBody(o.vcpus));
  const xsdtSize = HEADER_SIZE + 2 * 8;
  const off = { rsdp: 0, xsdt: align8(RSDP_SIZE) };
  const fadtOff = align8(off.xsdt + xsdtSize);
  const dsdtOff = align8(fadtOff + FADT_SIZE);
  const madtOff = align8(dsdtOff + dsdt.length);
  const total = madtOff + madt.length;
  const addr = (o: number): bigint => base + BigInt(o);
  const fadt = sdt('FACP', 6, fadtBody(addr(dsdtOff)));
  const xsdtBody = new Uint8Array(16);
  new DataView(xsdtBody.buffer).setBigUint64(0, addr(fadtOff), true);
  new DataView(xsdtBody.buffer).setBigUint64(8, addr(madtOff), true);
  const xsdt = sdt('XSDT', 1, xsdtBody);

  const rsdp = new Uint8Array(RSDP_SIZE);
  const rv = new DataView(rsdp.buffer);
  ascii(rsdp, 0, 'RSD PTR ', 8);
  ascii(rsdp, 9, OEM_ID, 6);
  rsdp[15] = 2; // ACPI 2.0+: XSDT
  rv.setUint32(16, 0, true); // no RSDT
  rv.setUint32(20, RSDP_SIZE, true);
  rv.setBigUint64(24, addr(off.xsdt), true);
  rsdp[8] = checksumOf(rsdp.subarray(0, 20));
  rsdp[32] = checksumOf(rsdp);

  const image = new Uint8Array(total);
  image.set(rsdp, off.rsdp);
  image.set(xsdt, off.xsdt);
  image.set(fadt, fadtOff);
  image.set(dsdt, dsdtOff);
  image.set(madt, madtOff);
  return { rsdp: addr(off.rsdp), image };
}

/** Writes the tables at ACPI_START (below 1 MiB, in the e820-reserved legacy area). */
export function writeAcpiTables(mem: GuestMemory, t: AcpiTables): void {
  const at = t.rsdp;
  if (
    at < ACPI_START ||
    at + BigInt(t.image.length) > ACPI_END ||
    !mem.isValidRange(GuestAddress.of(at), t.image.length)
  ) {
    throw new X86BootError(
      'MemoryLayout',
      `the ACPI tables (${t.image.length} bytes at ${hex(at)}) do not fit [${hex(ACPI_START)}, ${hex(ACPI_END)})`,
      { size: t.image.length },
    );
  }
  mem.write(GuestAddress.of(at), t.image);
}
