/** virtio-mmio register offsets, version 2 (virtio 1.2 §4.2.2). All are 32 bits wide. */
export const Reg = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

/** "virt" in little-endian. */
export const MMIO_MAGIC = 0x74726976;
/** The Version register's value: 2, the virtio 1.x (non-legacy) register layout. */
export const MMIO_VERSION = 2;
/** VendorID reported to the driver ("TSVM"). */
export const MMIO_VENDOR_ID = 0x4d565354;
/** Size of each device's MMIO window. */
export const MMIO_WINDOW_SIZE = 0x1000n;

/** InterruptStatus bits. */
export const INT_VRING = 1;
/** InterruptStatus bit: the device configuration changed. */
export const INT_CONFIG = 2;
