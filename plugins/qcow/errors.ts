import { VmmError } from '../../core/errors.js';

/** What went wrong with a qcow2 image; every failure the plugin raises carries one. */
export type QcowErrorKind =
  | 'BadMagic'
  | 'BadVersion'
  | 'BadHeader'
  | 'BadClusterSize'
  | 'BadRefcountOrder'
  | 'UnsupportedFeature'
  | 'Encrypted'
  | 'CorruptImage'
  | 'BadTable'
  | 'BadEntry'
  | 'OffsetPastEof'
  | 'TooLarge'
  | 'Backing'
  | 'Decompression'
  | 'Unsupported'
  | 'MetadataOverlap'
  | 'RefcountOverflow'
  | 'Range'
  | 'ReadOnly'
  | 'Closed'
  | 'Locked'
  | 'NotAFile'
  | 'Io';

/** The one error class of plugins/qcow: a QcowErrorKind, a one-line message and the offsets/values involved. */
export class QcowError extends VmmError<QcowErrorKind> {}

/** Raises a QcowError; used where an expression is handy. */
export function fail(kind: QcowErrorKind, message: string, data: Record<string, unknown> = {}, cause?: unknown): never {
  throw new QcowError(kind, message, data, cause === undefined ? undefined : { cause });
}
