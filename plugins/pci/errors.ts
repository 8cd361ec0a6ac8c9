import { VmmError } from '../../core/errors.js';

/** What the pci plugin and its config-space helper refused. */
export type PciErrorKind =
  /** A BAR declaration that real hardware could not have (size not a power of two, index taken...). */
  | 'InvalidBar'
  /** A register or capability declaration outside the configuration space or overlapping another. */
  | 'InvalidRegister'
  /** No room left: configuration space for a capability, a free slot, a BAR's window. */
  | 'Exhausted'
  /** A slot that is taken or not a slot of the bus. */
  | 'Slot'
  /** A value a device declared that does not fit its field (a vendor id over 16 bits, a pin over 4). */
  | 'InvalidValue';

/** The one error class of the pci plugin and its library. */
export class PciError extends VmmError<PciErrorKind> {}
