import { VmmError } from '../../core/errors.js';

/** Why the transport failed (each kind's meaning beside it). */
export type VirtioMmioErrorKind =
  /** The VirtioDevice description cannot be served (no VERSION_1, bad queue sizes, duplicate id). */
  | 'InvalidDevice'
  /** A saved transport state failed validation. */
  | 'InvalidState'
  /** Allocating a window or an interrupt line, or registering on the bus, failed. */
  | 'Attach';

/** The one error class of the virtio-mmio transport. */
export class VirtioMmioError extends VmmError<VirtioMmioErrorKind> {}
