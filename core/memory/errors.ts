import { VmmError } from '../errors.js';

export type GuestMemoryErrorKind =
  | 'InvalidGuestAddress'
  | 'InvalidRange'
  | 'InvalidLength'
  | 'NotContiguous'
  | 'ReadOnly'
  | 'Closed'
  | 'Layout'
  | 'Backend'
  | 'Io';

/** The one error class of core/memory: what was wrong plus the address and length involved. */
export class GuestMemoryError extends VmmError<GuestMemoryErrorKind> {}
