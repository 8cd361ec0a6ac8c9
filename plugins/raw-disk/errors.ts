import { VmmError } from '../../core/errors.js';

export type RawDiskErrorKind = 'Open' | 'OutOfRange' | 'ReadOnly' | 'Unaligned' | 'Io' | 'Closed' | 'TooLarge';

/** The one error class of the raw disk backend: what failed, on which file, at which offset. */
export class RawDiskError extends VmmError<RawDiskErrorKind> {}
