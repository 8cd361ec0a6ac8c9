import { VmmError } from '../errors.js';

/** Kinds of HypervisorError: a missing arch extension, or a saved vCPU state that cannot be restored. */
export type HypervisorErrorKind = 'Unsupported' | 'InvalidState';

/** The one error class of core/hypervisor (backends keep their own, e.g. KvmError). */
export class HypervisorError extends VmmError<HypervisorErrorKind> {}
