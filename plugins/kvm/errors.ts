import { VmmError } from '../../core/errors.js';

/** Kinds of KvmError. */
export type KvmErrorKind =
  | 'NoDevice' // /dev/kvm (or the configured path) does not exist
  | 'PermissionDenied' // cannot open it
  | 'ApiVersion' // KVM_GET_API_VERSION is not 12
  | 'MissingCapability' // a required KVM_CAP_* is absent
  | 'Ioctl' // an ioctl failed
  | 'InvalidArgument' // a caller passed something KVM would reject (or that would be unsafe)
  | 'Closed'
  | 'Runner'; // vCPU worker failures

/** The one error class of the KVM backend. `data` carries the ioctl, errno, slot, etc. */
export class KvmError extends VmmError<KvmErrorKind> {}
