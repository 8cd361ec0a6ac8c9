import { GuestAddress } from '../../../core/address.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';

const PRESENT = 1n,
  WRITABLE = 2n,
  PAGE_SIZE_BIT = 0x80n;
const TWO_MIB = 2n << 20n;
/** The boot identity map covers [0, 4 GiB): one PML4 entry, 4 PDPT entries, 4 page directories of 2 MiB pages. */
export const IDENTITY_MAPPED_BYTES = 4n << 30n;
const PD_COUNT = 4;

/**
 * Writes identity page tables for the bzImage 64-bit entry at PML4/PDPTE/PDE
 * (4 page directories from PDE, i.e. [0xb000, 0xf000)). 2 MiB pages need no
 * CPUID feature (1 GiB pages would need pdpe1gb). Returns the CR3 value.
 */
export function writeIdentityPageTables(mem: GuestMemory): bigint {
  const pml4 = new Uint8Array(4096),
    pdpt = new Uint8Array(4096);
  new DataView(pml4.buffer).setBigUint64(0, X86Layout.PDPTE | PRESENT | WRITABLE, true);
  const pdptView = new DataView(pdpt.buffer);
  for (let d = 0; d < PD_COUNT; d++) {
    const pdAddr = X86Layout.PDE + BigInt(d) * 4096n;
    pdptView.setBigUint64(d * 8, pdAddr | PRESENT | WRITABLE, true);
    const pd = new Uint8Array(4096);
    const pdView = new DataView(pd.buffer);
    for (let i = 0; i < 512; i++) {
      const phys = (BigInt(d) * 512n + BigInt(i)) * TWO_MIB;
      pdView.setBigUint64(i * 8, phys | PRESENT | WRITABLE | PAGE_SIZE_BIT, true);
    }
    mem.write(GuestAddress.of(pdAddr), pd);
  }
  mem.write(GuestAddress.of(X86Layout.PML4), pml4);
  mem.write(GuestAddress.of(X86Layout.PDPTE), pdpt);
  return X86Layout.PML4;
}

/**
 * Walks 4-level page tables in guest memory like the MMU would (for tests and
 * diagnostics): the physical address `va` maps to, or undefined when not present.
 */
export function translate(mem: GuestMemory, cr3: bigint, va: bigint): bigint | undefined {
  const ADDR = 0x000f_ffff_ffff_f000n;
  let table = cr3 & ADDR;
  const shifts = [39n, 30n, 21n, 12n];
  for (let level = 0; level < 4; level++) {
    const idx = (va >> shifts[level]) & 0x1ffn;
    const e = mem.readU64(GuestAddress.of(table + idx * 8n));
    if ((e & PRESENT) === 0n) return undefined;
    if ((level === 1 || level === 2) && (e & PAGE_SIZE_BIT) !== 0n) {
      const size = 1n << shifts[level];
      return (e & ADDR & ~(size - 1n)) | (va & (size - 1n));
    }
    table = e & ADDR;
  }
  return table | (va & 0xfffn);
}
