import { VmmError } from '../../core/errors.js';

/** Why the vfio plugin failed (each kind's meaning beside it). */
export type VfioErrorKind =
  /** The config names no usable device (not a PCI address or sysfs path, no IOMMU group). */
  | 'Config'
  /** A VFIO ioctl, read, write or mmap failed (the message names the call and errno). */
  | 'Kernel'
  /** The group is not viable (a device of it is not bound to vfio-pci) or the device is unusable. */
  | 'Device';

/** The one error class of the vfio plugin. */
export class VfioError extends VmmError<VfioErrorKind> {}
