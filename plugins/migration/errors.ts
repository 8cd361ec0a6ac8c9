import { VmmError } from '../../core/errors.js';

/** Kinds of MigrationError: what went wrong pausing, saving, restoring or moving a VM. */
export type MigrationErrorKind =
  /** The VM is in no state to do this (not running, no machine, already migrating). */
  | 'State'
  /** A snapshot directory or stream that is not ours, truncated, corrupt (checksum) or hostile. */
  | 'Format'
  /** Written by a newer (or unknown) format or plugin version than this build reads. */
  | 'Version'
  /** The snapshot's config does not describe the VM it is restored into, or its state does not fit. */
  | 'Mismatch'
  /** Reading or writing files, sockets. */
  | 'Io'
  /** The migration was cancelled. */
  | 'Cancelled'
  /** A URL or option that cannot work (unknown scheme, bad port). */
  | 'Usage';

/** The one error class of the migration plugin; its message is one line. */
export class MigrationError extends VmmError<MigrationErrorKind> {}
