import { VmmError } from '../../core/errors.js';

/** Why the virtio-pci transport failed (each kind's meaning beside it). */
export type VirtioPciErrorKind =
  /** The VirtioDevice description cannot be served (no VERSION_1, bad queue sizes, duplicate id). */
  | 'InvalidDevice'
  /** A saved transport state failed validation. */
  | 'InvalidState'
  /** Plugging the function into the PCI bus, or getting its interrupts or eventfds, failed. */
  | 'Attach';

/** The one error class of the virtio-pci transport. */
export class VirtioPciError extends VmmError<VirtioPciErrorKind> {}
