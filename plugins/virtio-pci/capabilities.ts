import type { PciCapability, PciConfigSpace } from '../pci/config/space.js';
import { CfgType, NOTIFY_OFF_MULTIPLIER, Region, VIRTIO_BAR, VIRTIO_BAR_SIZE } from './layout.js';

/** Vendor-specific capability id: every virtio capability is one (virtio 1.2 §4.1.4). */
const VENDOR_CAP_ID = 0x09;
/** struct virtio_pci_cap: cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2], offset, length. */
const CAP_BYTES = 16;

/** Declares one virtio capability's fixed fields (read-only) and returns it. */
function virtioCap(space: PciConfigSpace, cfgType: number, offset: number, length: number, extra = 0): PciCapability {
  const cap = space.addCapability(VENDOR_CAP_ID, CAP_BYTES + extra);
  cap.define(2, 1, CAP_BYTES + extra); // cap_len
  cap.define(3, 1, cfgType);
  cap.define(4, 1, VIRTIO_BAR);
  cap.define(5, 1, 0); // id: one structure of each type
  cap.define(6, 2, 0); // padding
  cap.define(8, 4, offset);
  cap.define(12, 4, length);
  return cap;
}

/**
 * The common, notify (with notify_off_multiplier), ISR and device configuration capabilities, all
 * in the one BAR. `deviceConfigSize` undefined: the whole device region is announced.
 */
export function addVirtioCapabilities(space: PciConfigSpace, deviceConfigSize: number | undefined): void {
  virtioCap(space, CfgType.common, Region.common.offset, Region.common.length);
  const notify = virtioCap(space, CfgType.notify, Region.notify.offset, Region.notify.length, 4);
  notify.define(16, 4, NOTIFY_OFF_MULTIPLIER);
  virtioCap(space, CfgType.isr, Region.isr.offset, Region.isr.length);
  const deviceLength = Math.min(deviceConfigSize ?? Region.device.length, Region.device.length);
  if (deviceLength > 0) virtioCap(space, CfgType.device, Region.device.offset, deviceLength);
}

/** BAR access for the PCI configuration access capability. */
export interface BarPort {
  read(offset: bigint, data: Uint8Array): void;
  write(offset: bigint, data: Uint8Array): void;
}

/**
 * The PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG, virtio 1.2 §4.1.4.9): the driver
 * writes bar, offset and length (1, 2 or 4, offset aligned to it), then reading pci_cfg_data reads that
 * many bytes of the BAR into it and writing pci_cfg_data writes its first length bytes there. Requests
 * for another BAR, a bad length or alignment, or past the BAR's end do nothing (the data reads back as is).
 */
export function addPciCfgCapability(space: PciConfigSpace, bar: BarPort): PciCapability {
  const cap = space.addCapability(VENDOR_CAP_ID, CAP_BYTES + 4);
  cap.define(2, 1, CAP_BYTES + 4);
  cap.define(3, 1, CfgType.pciCfg);
  cap.define(4, 1, 0, { writable: 0xff });
  cap.define(5, 1, 0);
  cap.define(6, 2, 0);
  cap.define(8, 4, 0, { writable: 0xffff_ffff });
  cap.define(12, 4, 0, { writable: 0xffff_ffff });
  cap.define(16, 4, 0, { writable: 0xffff_ffff });
  const dataAt = cap.offset + CAP_BYTES;
  const touchesData = (offset: number, size: number): boolean => offset < dataAt + 4 && dataAt < offset + size;
  const window = (): { offset: bigint; len: number } | undefined => {
    const len = cap.get(12, 4);
    const offset = BigInt(cap.get(8, 4) >>> 0);
    if (cap.get(4, 1) !== VIRTIO_BAR || ![1, 2, 4].includes(len)) return undefined;
    if (offset % BigInt(len) !== 0n || offset + BigInt(len) > VIRTIO_BAR_SIZE) return undefined;
    return { offset, len };
  };
  cap.watch({
    onRead: (offset, size) => {
      const w = touchesData(offset, size) ? window() : undefined;
      if (!w) return;
      const data = new Uint8Array(w.len);
      bar.read(w.offset, data);
      const padded = new Uint8Array(4);
      padded.set(data);
      cap.set(16, 4, new DataView(padded.buffer).getUint32(0, true));
    },
    onWrite: (offset, size) => {
      const w = touchesData(offset, size) ? window() : undefined;
      if (!w) return;
      const word = new Uint8Array(4);
      new DataView(word.buffer).setUint32(0, cap.get(16, 4) >>> 0, true);
      bar.write(w.offset, word.slice(0, w.len));
    },
  });
  return cap;
}
