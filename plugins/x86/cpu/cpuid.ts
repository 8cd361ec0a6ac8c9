import type { CpuidEntry } from '../hypervisor/types.js';

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry applies to one subleaf (index). */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;
/** CPUID leaf of the hypervisor signature (eax: the highest hypervisor leaf). */
export const HYPERVISOR_LEAF = 0x4000_0000;
/** CPUID leaf of KVM's paravirtual features (kvmclock, PV EOI, ...). */
export const HYPERVISOR_FEATURES_LEAF = 0x4000_0001;
/** "KVMKVMKVM\0\0\0" as ebx, ecx, edx. */
export const KVM_SIGNATURE = { ebx: 0x4b4d_564b, ecx: 0x564b_4d56, edx: 0x0000_004d } as const;
const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;

/** The host CPU's vendor, as CPUID leaf 0 names it. */
export type CpuVendor = 'intel' | 'amd' | 'other';

/** The vendor leaf 0 of `entries` names; 'other' when the leaf is missing or unknown. */
export function cpuVendor(entries: readonly CpuidEntry[]): CpuVendor {
  const l0 = entries.find((e) => e.function === 0);
  if (!l0) return 'other';
  if (l0.ebx === 0x756e_6547 && l0.edx === 0x4965_6e69 && l0.ecx === 0x6c65_746e) return 'intel'; // GenuineIntel
  if (l0.ebx === 0x6874_7541 && l0.edx === 0x6974_6e65 && l0.ecx === 0x444d_4163) return 'amd'; // AuthenticAMD
  return 'other';
}

/** Bits needed to number `n` things (0 for 1). */
const bitsFor = (n: number): number => (n <= 1 ? 0 : 32 - Math.clz32(n - 1));

/**
 * The CPUID one vCPU sees, from what the hypervisor supports: APIC id = vCPU index,
 * one socket of `vcpuCount` single-thread cores (leaves 1, 4, 0xB, 0x1F and AMD's
 * 0x80000008 / 0x8000001E), the hypervisor bit, and KVM's signature leaf; the KVM
 * feature leaf 0x40000001 is passed through as supported.
 */
export function vcpuCpuid(supported: readonly CpuidEntry[], index: number, vcpuCount: number): CpuidEntry[] {
  const vendor = cpuVendor(supported);
  const apicId = index >>> 0;
  const coreBits = bitsFor(vcpuCount);
  const out: CpuidEntry[] = [];
  const topologyLeaves = new Set<number>();
  for (const src of supported) {
    const e = { ...src };
    switch (e.function) {
      case 1:
        e.ebx = (((apicId & 0xff) << 24) | ((Math.min(vcpuCount, 255) & 0xff) << 16) | (e.ebx & 0xffff)) >>> 0;
        e.ecx = (e.ecx | ECX_HYPERVISOR) >>> 0;
        e.edx = vcpuCount > 1 ? (e.edx | EDX_HTT) >>> 0 : (e.edx & ~EDX_HTT) >>> 0;
        break;
      case 4:
        if (vendor === 'intel' && (e.eax & 0x1f) !== 0) {
          const level = (e.eax >> 5) & 0x7;
          const sharing = level >= 3 ? vcpuCount - 1 : 0;
          e.eax = ((e.eax & 0x3fff) | (Math.min(sharing, 0xfff) << 14) | (Math.min(vcpuCount - 1, 63) << 26)) >>> 0;
        }
        break;
      case 0xb:
      case 0x1f:
        topologyLeaves.add(e.function);
        continue; // regenerated below
      case HYPERVISOR_LEAF:
        continue; // regenerated below
      case 0x8000_0008:
        if (vendor === 'amd') e.ecx = ((e.ecx & ~0xf0ff) | (coreBits << 12) | ((vcpuCount - 1) & 0xff)) >>> 0;
        break;
      case 0x8000_001e:
        if (vendor === 'amd') {
          e.eax = apicId;
          e.ebx = ((e.ebx & 0xffff_0000) | (index & 0xff)) >>> 0; // core id; 1 thread per core
          e.ecx = (e.ecx & 0xffff_f800) >>> 0; // node 0, 1 node per processor
        }
        break;
    }
    out.push(e);
  }
  for (const fn of topologyLeaves) {
    out.push(
      { function: fn, index: 0, flags: CPUID_FLAG_SIGNIFICANT_INDEX, eax: 0, ebx: 1, ecx: (1 << 8) | 0, edx: apicId },
      {
        function: fn,
        index: 1,
        flags: CPUID_FLAG_SIGNIFICANT_INDEX,
        eax: coreBits,
        ebx: vcpuCount,
        ecx: (2 << 8) | 1,
        edx: apicId,
      },
      { function: fn, index: 2, flags: CPUID_FLAG_SIGNIFICANT_INDEX, eax: 0, ebx: 0, ecx: 2, edx: apicId },
    );
  }
  const hvMax = supported.some((e) => e.function === HYPERVISOR_FEATURES_LEAF)
    ? HYPERVISOR_FEATURES_LEAF
    : HYPERVISOR_LEAF;
  out.push({ function: HYPERVISOR_LEAF, index: 0, flags: 0, eax: hvMax, ...KVM_SIGNATURE });
  return out;
}

/** Looks an entry up the way the CPU would (index matters only for significant-index leaves). */
export function findCpuid(entries: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry | undefined {
  return entries.find(
    (e) => e.function === fn && ((e.flags & CPUID_FLAG_SIGNIFICANT_INDEX) === 0 || e.index === index),
  );
}

/** CPUID bits the hypervisor changes while the guest runs (they follow CR4, XCR0 and the APIC base). */
const RUNTIME_BITS: readonly { fn: number; index: number; reg: 'eax' | 'ebx' | 'ecx' | 'edx'; mask: number }[] = [
  { fn: 1, index: 0, reg: 'ecx', mask: 1 << 27 }, // OSXSAVE
  { fn: 1, index: 0, reg: 'edx', mask: 1 << 9 }, // APIC
  { fn: 7, index: 0, reg: 'ecx', mask: 1 << 4 }, // OSPKE
  { fn: 0xd, index: 0, reg: 'ebx', mask: -1 }, // XSAVE area size for XCR0
  { fn: 0xd, index: 1, reg: 'ebx', mask: -1 }, // XSAVES area size for XCR0 | XSS
];

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** `e`'s register `reg` without the bits that change at run time. */
function stable(e: CpuidEntry, reg: 'eax' | 'ebx' | 'ecx' | 'edx'): number {
  let v = e[reg];
  for (const b of RUNTIME_BITS) if (b.fn === e.function && b.index === e.index && b.reg === reg) v &= ~b.mask;
  return v >>> 0;
}

/**
 * How a saved vCPU CPUID differs from the one this vCPU has, leaving out the bits that follow the guest's CR4, XCR0
 * and APIC base: the first leaf missing on either side or the first register that differs, in words; undefined when
 * they are the same.
 */
export function cpuidDifference(saved: readonly CpuidEntry[], here: readonly CpuidEntry[]): string | undefined {
  const key = (e: CpuidEntry): string =>
    `${hex(e.function)}.${(e.flags & CPUID_FLAG_SIGNIFICANT_INDEX) !== 0 ? e.index : 0}`;
  // The CPU (and KVM) uses the first entry of a leaf: later ones with the same key (zero-filled entries a
  // hypervisor may list) are not what the guest sees.
  const firsts = (list: readonly CpuidEntry[]): Map<string, CpuidEntry> => {
    const m = new Map<string, CpuidEntry>();
    for (const e of list) if (!m.has(key(e))) m.set(key(e), e);
    return m;
  };
  const mine = firsts(here);
  for (const s of firsts(saved).values()) {
    const h = mine.get(key(s));
    if (!h) return `leaf ${key(s)} was saved but this host has no such leaf`;
    mine.delete(key(s));
    for (const reg of ['eax', 'ebx', 'ecx', 'edx'] as const) {
      if (stable(s, reg) !== stable(h, reg))
        return `leaf ${key(s)} ${reg} was ${hex(stable(s, reg))}, here it is ${hex(stable(h, reg))}`;
    }
  }
  const extra = [...mine.keys()][0];
  return extra === undefined ? undefined : `leaf ${extra} is here but was not saved`;
}
