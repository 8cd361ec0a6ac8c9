import { VmmError } from '../../core/errors.js';

/** What the acpi plugin refused. */
export type AcpiErrorKind =
  /** A name that is not an AML NameString (bad characters, too long). */
  | 'InvalidName'
  /** A value that does not fit where it goes (an integer over 64 bits, a non-ASCII string, a range). */
  | 'InvalidValue'
  /** A package or table over the sizes AML and ACPI encode. */
  | 'TooLarge'
  /** Two contributions that set one FADT or MADT field differently, or a contribution that threw. */
  | 'Contribution'
  /** A table base the RSDP cannot start at. */
  | 'Layout';

/** The one error class of the acpi plugin: what was refused, plus the values involved. */
export class AcpiError extends VmmError<AcpiErrorKind> {}
