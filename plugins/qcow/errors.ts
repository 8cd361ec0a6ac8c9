import { VmmError } from '../../core/errors.js';

/** What went wrong with a qcow2 image; every failure the plugin raises carries one. */
export type QcowErrorKind =
  | 'bad-magic'
  | 'bad-version'
  | 'bad-header'
  | 'bad-cluster-size'
  | 'bad-refcount-order'
  | 'unsupported-feature'
  | 'encrypted'
  | 'corrupt-image'
  | 'bad-table'
  | 'bad-entry'
  | 'offset-past-eof'
  | 'too-large'
  | 'backing'
  | 'decompression'
  | 'unsupported'
  | 'metadata-overlap'
  | 'refcount-overflow'
  | 'range'
  | 'read-only'
  | 'closed'
  | 'locked'
  | 'not-a-file'
  | 'io';

export class QcowError extends VmmError<QcowErrorKind> {}

/** Raises a QcowError; used where an expression is handy. */
export function fail(kind: QcowErrorKind, message: string, data: Record<string, unknown> = {}, cause?: unknown): never {
  throw new QcowError(kind, message, data, cause === undefined ? undefined : { cause });
}
