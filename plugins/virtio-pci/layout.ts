import { VirtioDeviceType } from '../../core/virtio/virtio.js';

/** PCI vendor id of virtio devices (Red Hat, Inc.). */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** A modern (non-transitional) device's PCI device id is this plus its virtio device type (virtio 1.2 §4.1.2). */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** Non-transitional devices have revision 1 or higher. */
export const VIRTIO_PCI_REVISION = 1;
/** Subsystem ids: the virtio vendor, and a subsystem device id of 0x40 or higher (here QEMU's 0x1100). */
export const VIRTIO_PCI_SUBSYSTEM_VENDOR_ID = 0x1af4;
/** The subsystem device id every function here reports. */
export const VIRTIO_PCI_SUBSYSTEM_ID = 0x1100;

/** PCI class codes (base class << 16 | subclass << 8 | programming interface) by virtio device type. */
const CLASS_BY_TYPE: Readonly<Record<number, number>> = {
  [VirtioDeviceType.net]: 0x020000, // network controller, Ethernet
  [VirtioDeviceType.block]: 0x010000, // mass storage, SCSI (what QEMU reports for virtio-blk)
  [VirtioDeviceType.console]: 0x078000, // communication controller, other
};
/** Devices without a better class: "unassigned class" (0xff). */
const CLASS_OTHER = 0xff0000;

/** The class code a virtio device of `deviceType` reports. */
export const classCodeFor = (deviceType: number): number => CLASS_BY_TYPE[deviceType] ?? CLASS_OTHER;

/** virtio PCI capability cfg_type values (virtio 1.2 §4.1.4). */
export const CfgType = { common: 1, notify: 2, isr: 3, device: 4, pciCfg: 5 } as const;

/** The one BAR every function has: 64-bit memory, prefetchable (as QEMU's modern BAR), holding every region. */
export const VIRTIO_BAR = 0;
/** Bytes of the BAR: each region below in its own 4 KiB page, the MSI-X table up to 2048 entries. */
export const VIRTIO_BAR_SIZE = 0x10000n;

/**
 * Where the regions lie in the BAR. Each starts on a 4 KiB page; lengths are what the capabilities
 * announce (common: the virtio 1.2 structure including queue_notif_config_data and queue_reset).
 */
export const Region = {
  common: { offset: 0x0000, length: 0x3c },
  isr: { offset: 0x1000, length: 0x1 },
  device: { offset: 0x2000, length: 0x1000 },
  notify: { offset: 0x3000, length: 0x1000 },
  msixTable: { offset: 0x4000, length: 0x8000 },
  msixPba: { offset: 0xc000, length: 0x100 },
} as const;

/** Bytes between two queues' notify addresses: queue i is notified at notify.offset + i * 4. */
export const NOTIFY_OFF_MULTIPLIER = 4;
/** Largest number of queues the notify region holds (also the transport's limit). */
export const MAX_QUEUES = Region.notify.length / NOTIFY_OFF_MULTIPLIER;

/** msix_config / queue_msix_vector value meaning "no vector". */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** ISR status bits (read clears). */
export const ISR_QUEUE = 1;
/** ISR bit: the device configuration changed. */
export const ISR_CONFIG = 2;

/** Offsets of the common configuration structure's fields (virtio 1.2 §4.1.4.3). */
export const Common = {
  deviceFeatureSelect: 0x00,
  deviceFeature: 0x04,
  driverFeatureSelect: 0x08,
  driverFeature: 0x0c,
  msixConfig: 0x10,
  numQueues: 0x12,
  deviceStatus: 0x14,
  configGeneration: 0x15,
  queueSelect: 0x16,
  queueSize: 0x18,
  queueMsixVector: 0x1a,
  queueEnable: 0x1c,
  queueNotifyOff: 0x1e,
  queueDesc: 0x20,
  queueDriver: 0x28,
  queueDevice: 0x30,
  queueNotifConfigData: 0x38,
  queueReset: 0x3a,
} as const;
