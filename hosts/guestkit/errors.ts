import { VmmError } from '../../core/errors.js';

export type GuestKitErrorKind =
  | 'BadKernelImage'
  | 'Decompress'
  | 'BadElf'
  | 'MissingPvhNote'
  | 'PackageFetch'
  | 'Unsupported'
  | 'MissingModule'
  | 'BadCpioEntry';

/** Everything the guest kit reports: bad kernel images, package fetch failures, unsupported hosts. */
export class GuestKitError extends VmmError<GuestKitErrorKind> {}
