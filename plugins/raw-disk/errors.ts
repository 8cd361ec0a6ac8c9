import { VmmError } from '../../core/errors.js';

/**
 * Why a raw disk operation failed: the file could not be opened, an access past the end, a write to a read-only disk,
 * an O_DIRECT access off the 4 KiB alignment, a host I/O error, use after close, or a file above 2^53 bytes.
 */
export type RawDiskErrorKind = 'Open' | 'OutOfRange' | 'ReadOnly' | 'Unaligned' | 'Io' | 'Closed' | 'TooLarge';

/** The one error class of the raw disk backend: what failed, on which file, at which offset. */
export class RawDiskError extends VmmError<RawDiskErrorKind> {}
