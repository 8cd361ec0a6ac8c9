import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import { X86BootError } from '../errors.js';

/**
 * The Intel MultiProcessor Specification 1.4 tables: a floating pointer in the EBDA
 * (Linux scans 639 KiB..640 KiB) followed by the configuration table, so the guest
 * finds its CPUs and the IOAPIC without ACPI.
 */
export const MP = {
  FLOATING_SIZE: 16,
  HEADER_SIZE: 44,
  PROCESSOR_SIZE: 20,
  ENTRY_SIZE: 8,
  SPEC_REV: 4,
  APIC_VERSION: 0x14,
  IOAPIC_VERSION: 0x11,
  ENTRY_PROCESSOR: 0,
  ENTRY_BUS: 1,
  ENTRY_IOAPIC: 2,
  ENTRY_IO_INT: 3,
  ENTRY_LOCAL_INT: 4,
  INT_TYPE_INT: 0,
  INT_TYPE_NMI: 1,
  INT_TYPE_EXTINT: 3,
  CPU_ENABLED: 1,
  CPU_BSP: 2,
  ISA_BUS_ID: 0,
} as const;

/** xAPIC ids are 8 bits and 0xff is broadcast; the IOAPIC takes the id after the last CPU. */
export const MPTABLE_MAX_VCPUS = 254;
/** ISA IRQs 0..15 plus the GSIs 16..IRQ_ALLOC_END the allocator hands out. */
export const IOAPIC_PINS = X86Layout.IRQ_ALLOC_END + 1;

/** What the MP table describes: the vCPU count and the CPU signature/features for its processor entries. */
export interface MpTableOptions {
  vcpus: number;
  /** CPUID leaf 1 eax (family/model/stepping) and edx (features), for the processor entries. */
  cpuSignature?: number;
  cpuFeatures?: number;
}

/**
 * Bytes the MP table takes for `vcpus` CPUs (floating pointer, header, processor, bus, IOAPIC and interrupt entries).
 */
export function mpTableSize(vcpus: number): number {
  return MP.FLOATING_SIZE + MP.HEADER_SIZE + vcpus * MP.PROCESSOR_SIZE + MP.ENTRY_SIZE * (2 + IOAPIC_PINS + 2);
}

const checksum = (b: Uint8Array): number => (0x100 - b.reduce((s, x) => (s + x) & 0xff, 0)) & 0xff;

function ascii(dst: Uint8Array, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) dst[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** Builds floating pointer + configuration table to be placed at `base`. */
export function buildMpTable(o: MpTableOptions, base: bigint = X86Layout.EBDA_START): Uint8Array {
  if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > MPTABLE_MAX_VCPUS) {
    throw new X86BootError(
      'TooManyVcpus',
      `the MP table describes 1..${MPTABLE_MAX_VCPUS} vCPUs (xAPIC ids), not ${o.vcpus}`,
      { vcpus: o.vcpus, max: MPTABLE_MAX_VCPUS },
    );
  }
  const out = new Uint8Array(mpTableSize(o.vcpus));
  const dv = new DataView(out.buffer);
  const configAt = MP.FLOATING_SIZE;
  const tableAddr = base + BigInt(configAt);

  // Floating pointer structure.
  ascii(out, 0, '_MP_', 4);
  dv.setUint32(4, Number(tableAddr), true);
  out[8] = 1; // length in 16-byte units
  out[9] = MP.SPEC_REV;
  // out[11..15] feature bytes 0: a configuration table is present, no IMCR.
  out[10] = checksum(out.subarray(0, MP.FLOATING_SIZE));

  // Entries.
  let p = configAt + MP.HEADER_SIZE;
  let count = 0;
  for (let i = 0; i < o.vcpus; i++) {
    out[p] = MP.ENTRY_PROCESSOR;
    out[p + 1] = i; // local APIC id = vCPU index
    out[p + 2] = MP.APIC_VERSION;
    out[p + 3] = MP.CPU_ENABLED | (i === 0 ? MP.CPU_BSP : 0);
    dv.setUint32(p + 4, o.cpuSignature ?? 0x600, true);
    dv.setUint32(p + 8, o.cpuFeatures ?? 0x201, true); // FPU | APIC
    p += MP.PROCESSOR_SIZE;
    count++;
  }
  out[p] = MP.ENTRY_BUS;
  out[p + 1] = MP.ISA_BUS_ID;
  ascii(out, p + 2, 'ISA', 6);
  p += MP.ENTRY_SIZE;
  count++;
  const ioapicId = o.vcpus;
  out[p] = MP.ENTRY_IOAPIC;
  out[p + 1] = ioapicId;
  out[p + 2] = MP.IOAPIC_VERSION;
  out[p + 3] = 1; // enabled
  dv.setUint32(p + 4, Number(X86Layout.IOAPIC), true);
  p += MP.ENTRY_SIZE;
  count++;
  for (let irq = 0; irq < IOAPIC_PINS; irq++) {
    // Bus-conforming polarity and trigger (ISA: active high, edge), identity-wired like KVM's default GSI routing.
    out[p] = MP.ENTRY_IO_INT;
    out[p + 1] = MP.INT_TYPE_INT;
    dv.setUint16(p + 2, 0, true);
    out[p + 4] = MP.ISA_BUS_ID;
    out[p + 5] = irq;
    out[p + 6] = ioapicId;
    out[p + 7] = irq;
    p += MP.ENTRY_SIZE;
    count++;
  }
  // LINT0: the PIC's ExtINT to the BSP; LINT1: NMI to every local APIC.
  out[p] = MP.ENTRY_LOCAL_INT;
  out[p + 1] = MP.INT_TYPE_EXTINT;
  out[p + 4] = MP.ISA_BUS_ID;
  out[p + 5] = 0;
  out[p + 6] = 0;
  out[p + 7] = 0;
  p += MP.ENTRY_SIZE;
  count++;
  out[p] = MP.ENTRY_LOCAL_INT;
  out[p + 1] = MP.INT_TYPE_NMI;
  out[p + 4] = MP.ISA_BUS_ID;
  out[p + 5] = 0;
  out[p + 6] = 0xff;
  out[p + 7] = 1;
  p += MP.ENTRY_SIZE;
  count++;

  // Configuration table header.
  const h = configAt;
  ascii(out, h, 'PCMP', 4);
  dv.setUint16(h + 4, p - configAt, true); // base table length
  out[h + 6] = MP.SPEC_REV;
  ascii(out, h + 8, 'TSVMM', 8);
  ascii(out, h + 16, 'TSVMM-X86', 12);
  dv.setUint16(h + 34, count, true);
  dv.setUint32(h + 36, Number(X86Layout.LAPIC), true);
  out[h + 7] = checksum(out.subarray(configAt, p));
  return out;
}

/**
 * Writes the MP table into the EBDA. It may run past 640 KiB into the legacy
 * hole, which the e820 map reserves up to 1 MiB.
 */
export function writeMpTable(mem: GuestMemory, table: Uint8Array, base: bigint = X86Layout.EBDA_START): void {
  if (base + BigInt(table.length) > X86Layout.HIGH_MEMORY || !mem.isValidRange(GuestAddress.of(base), table.length)) {
    throw new X86BootError(
      'MemoryLayout',
      `the MP table (${table.length} bytes at 0x${base.toString(16)}) does not fit below 1 MiB`,
      { size: table.length },
    );
  }
  mem.write(GuestAddress.of(base), table);
}
