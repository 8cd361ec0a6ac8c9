import { VmmError } from '../../core/errors.js';

export type SandboxErrorKind = 'NoSandboxTools' | 'ImageBuild' | 'Spawn' | 'BadKernel' | 'NoKvm' | 'Share';

/** Failures of the nested sandbox and the QEMU boot helper (tools missing, images that cannot be built). */
export class SandboxError extends VmmError<SandboxErrorKind> {}
