import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import type { X86Segment } from '../hypervisor/types.js';
import { X86Layout } from '../layout.js';

/**
 * The boot GDT. Selectors follow the kernel's boot protocol: __BOOT_CS = 0x10 (64-bit
 * code) and __BOOT_DS = 0x18; 0x08 is a flat 32-bit code segment for the PVH entry.
 * Four entries fit the 32 bytes between BOOT_GDT and BOOT_IDT; TR is only loaded into
 * the vCPU's hidden state (a busy TSS, as the PVH spec asks) and has no GDT entry.
 */
export const Selector = { CODE32: 0x08, CODE64: 0x10, DATA: 0x18 } as const;

/** Access/flag bits as (G, D/B, L, AVL) << 12 | (P, DPL, S, type). */
const CODE64_FLAGS = 0xa09b;
const CODE32_FLAGS = 0xc09b;
const DATA_FLAGS = 0xc093;
const TSS_BUSY_TYPE = 0xb;

/**
 * An 8-byte segment descriptor from flags ((G, D/B, L, AVL) << 12 | (P, DPL, S, type)), a 32-bit base and a 20-bit
 * limit.
 */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0),
    l = BigInt(limit >>> 0),
    f = BigInt(flags);
  return (
    ((b & 0xff00_0000n) << 32n) |
    ((f & 0xf0ffn) << 40n) |
    ((l & 0xf_0000n) << 32n) |
    ((b & 0x00ff_ffffn) << 16n) |
    (l & 0xffffn)
  );
}

/** The boot GDT's descriptors by index (selector >> 3): null, flat 32-bit code, 64-bit code, flat data. */
export const BOOT_GDT_ENTRIES: readonly bigint[] = [
  0n,
  gdtEntry(CODE32_FLAGS, 0, 0xfffff),
  gdtEntry(CODE64_FLAGS, 0, 0xfffff),
  gdtEntry(DATA_FLAGS, 0, 0xfffff),
];

/** The hidden (cached) part of a segment register as the entry describes it. */
export function segmentFromEntry(entry: bigint, selector: number): X86Segment {
  const base = ((entry >> 16n) & 0xff_ffffn) | ((entry >> 32n) & 0xff00_0000n);
  const rawLimit = Number((entry & 0xffffn) | ((entry >> 32n) & 0xf_0000n));
  const flags = Number((entry >> 40n) & 0xf0ffn);
  const g = (flags >> 15) & 1;
  const present = (flags >> 7) & 1;
  return {
    base,
    limit: g ? ((rawLimit << 12) | 0xfff) >>> 0 : rawLimit,
    selector,
    type: flags & 0xf,
    present,
    dpl: (flags >> 5) & 3,
    s: (flags >> 4) & 1,
    avl: (flags >> 12) & 1,
    l: (flags >> 13) & 1,
    db: (flags >> 14) & 1,
    g,
    unusable: present ? 0 : 1,
  };
}

/** The segment register value for a boot GDT selector, as if loaded from its descriptor. */
export function bootSegment(selector: number): X86Segment {
  return segmentFromEntry(BOOT_GDT_ENTRIES[selector >> 3], selector);
}

/** A 32-bit busy TSS at 0 with limit 0x67, as the PVH spec asks for TR; no GDT entry backs it. */
export function bootTss(): X86Segment {
  return {
    base: 0n,
    limit: 0x67,
    selector: 0,
    type: TSS_BUSY_TYPE,
    present: 1,
    dpl: 0,
    s: 0,
    avl: 0,
    l: 0,
    db: 0,
    g: 0,
    unusable: 0,
  };
}

/** A segment register marked unusable (LDTR: no LDT). */
export function unusableSegment(): X86Segment {
  return { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, s: 0, avl: 0, l: 0, db: 0, g: 0, unusable: 1 };
}

/** Writes the GDT at BOOT_GDT and an empty IDT at BOOT_IDT; returns their limits. */
export function writeBootGdt(mem: GuestMemory): { gdtLimit: number; idtLimit: number } {
  BOOT_GDT_ENTRIES.forEach((e, i) => mem.writeU64(GuestAddress.of(X86Layout.BOOT_GDT + BigInt(i * 8)), e));
  mem.writeU64(GuestAddress.of(X86Layout.BOOT_IDT), 0n);
  return { gdtLimit: BOOT_GDT_ENTRIES.length * 8 - 1, idtLimit: 7 };
}
