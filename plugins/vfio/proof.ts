/**
 * What the vfio linux-tier proof and the sandbox's IOMMU + NVMe variant agree on: the NVMe namespace's
 * size and known content (written by the host before L1 starts), and the pattern the L2 guest writes
 * (found in the host's backing file after the run).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Bytes of the emulated NVMe's backing file (its one namespace). */
export const PROOF_NVME_SIZE = 64 << 20;
/** The first KNOWN bytes hold knownBytes(); the guest hashes them. */
export const PROOF_KNOWN = 4 << 20;
/** What the guest writes, and where (a sector boundary past the known bytes). */
export const PROOF_PATTERN = 'TSVMM-VFIO-NVME-PATTERN-5e2b71';
/** Byte offset of the pattern in the namespace. */
export const PROOF_PATTERN_AT = 8 << 20;
/** The NVMe controller's serial number in L1's QEMU. */
export const PROOF_NVME_SERIAL = 'tsvmm-vfio-nvme';

/** Deterministic bytes (xorshift32) for the namespace's head. */
export function knownBytes(len = PROOF_KNOWN, seed = 0x5eed_7f10): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

/** A PCI function bound to vfio-pci on this machine, as sysfs lists it. */
export interface VfioBoundFunction {
  /** `0000:00:04.0`. */
  address: string;
  /** `vendor:device`, e.g. `1b36:0010`. */
  ids: string;
  /** `0x010802` for an NVMe controller. */
  pciClass: string;
}

/**
 * The functions bound to vfio-pci here (in the sandbox's IOMMU variant: the NVMe controller it bound),
 * from /sys/bus/pci/drivers/vfio-pci; none where the driver is not loaded.
 */
export function vfioBoundFunctions(sys = '/sys/bus/pci'): VfioBoundFunction[] {
  const dir = `${sys}/drivers/vfio-pci`;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((e) => /^[0-9a-f]{4}:/.test(e))
    .map((address) => {
      const rd = (f: string) => readFileSync(`${sys}/devices/${address}/${f}`, 'utf8').trim();
      return { address, ids: `${rd('vendor')}:${rd('device')}`.replace(/0x/g, ''), pciClass: rd('class') };
    });
}
