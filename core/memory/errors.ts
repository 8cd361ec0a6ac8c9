import { VmmError } from '../errors.js';

/**
 * Why a guest memory operation failed: a bad address, range or length, a range that crosses into a hole
 * ('NotContiguous'), a write to a read-only region, use after close, a readLayout/writeLayout field layout that
 * does not fit ('Layout'), the host refusing to map or back the memory ('Backend'), or a file transfer that
 * failed ('Io').
 */
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
