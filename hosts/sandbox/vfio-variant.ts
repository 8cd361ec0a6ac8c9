import { closeSync, openSync, readSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import {
  knownBytes,
  PROOF_NVME_SERIAL,
  PROOF_NVME_SIZE,
  PROOF_PATTERN,
  PROOF_PATTERN_AT,
} from '../../plugins/vfio/proof.js';
import type { SandboxVariant } from './variant.js';

/** The PCI class of an NVMe controller (mass storage, NVM, NVMe). */
const NVME_CLASS = '0x010802';

/**
 * L1 on q35 with an emulated Intel IOMMU (interrupt remapping on) and an emulated NVMe controller whose
 * namespace is the host file `nvmeFile` (machine-facts §2a, §6). L1's kernel gets `intel_iommu=on iommu=pt
 * no_timer_check`, loads the VFIO modules, and before the tests run binds every NVMe controller to vfio-pci
 * (driver_override, unbind from L1's own nvme driver, drivers_probe), printing `tsvmm-sandbox: vfio <address> ...`
 * for each.
 */
export function iommuNvmeVariant(nvmeFile: string): SandboxVariant {
  return {
    name: 'iommu-nvme',
    machine: 'q35,kernel-irqchip=split',
    qemuArgs: [
      '-device',
      'intel-iommu,intremap=on',
      '-drive',
      `file=${nvmeFile},if=none,id=tsvmm-nvme,format=raw`,
      '-device',
      `nvme,serial=${PROOF_NVME_SERIAL},drive=tsvmm-nvme`,
    ],
    // no_timer_check: a TCG L1 on a loaded host can fail the IO-APIC timer check, fatal with interrupt remapping
    append: 'intel_iommu=on iommu=pt no_timer_check',
    modules: [
      { name: 'vfio' },
      { name: 'vfio_iommu_type1' },
      { name: 'vfio_virqfd', optional: true },
      { name: 'vfio_pci_core' },
      { name: 'vfio_pci' },
    ],
    stage: `for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/class)" = "${NVME_CLASS}" ] || continue
  a=\${d##*/}
  echo vfio-pci > $d/driver_override
  [ -e $d/driver ] && echo $a > $d/driver/unbind
  echo $a > /sys/bus/pci/drivers_probe
  echo "tsvmm-sandbox: vfio $a [$(cat $d/vendor):$(cat $d/device)] driver=$(basename "$(readlink $d/driver)") group=$(basename "$(readlink $d/iommu_group)")"
done`,
    diskDevice: 'virtio-blk-pci',
  };
}

/** Writes the NVMe's backing file: known bytes at the start, zeros to PROOF_NVME_SIZE. */
export function writeNvmeBacking(path: string): void {
  writeFileSync(path, knownBytes());
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, PROOF_NVME_SIZE);
    writeSync(fd, Buffer.alloc(PROOF_PATTERN.length), 0, PROOF_PATTERN.length, PROOF_PATTERN_AT);
  } finally {
    closeSync(fd);
  }
}

/** Whether the L2 guest's pattern is in the backing file now (the host's side of the proof). */
export function nvmePatternOnHost(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(PROOF_PATTERN.length);
    readSync(fd, b, 0, b.length, PROOF_PATTERN_AT);
    return b.toString('latin1') === PROOF_PATTERN;
  } finally {
    closeSync(fd);
  }
}
