import { VmmError } from '../../core/errors.js';

/**
 * Why the sandbox failed: QEMU or another tool is missing, L1's image could not be built, a process could not be
 * started, the kernel is unusable, the host has no /dev/kvm for L1, a virtio-fs share could not be set up, or an
 * experiment's setting (TSVMM_SANDBOX_*) is invalid.
 */
export type SandboxErrorKind = 'NoSandboxTools' | 'ImageBuild' | 'Spawn' | 'BadKernel' | 'NoKvm' | 'Share' | 'Config';

/** Failures of the nested sandbox and the QEMU boot helper (tools missing, images that cannot be built). */
export class SandboxError extends VmmError<SandboxErrorKind> {}
