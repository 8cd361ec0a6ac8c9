import { VmmError } from '../../core/errors.js';

/**
 * Why the guest kit failed: a kernel file it cannot use (bzImage, compression, ELF, PVH note), a Debian package it
 * could not fetch or unpack, an unsupported host, a kernel module missing from the package, or a bad cpio entry.
 */
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
