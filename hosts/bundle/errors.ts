import { VmmError } from '../../core/errors.js';

export type BundleErrorKind = 'NoEsbuild' | 'Worker' | 'Layout' | 'Input';

/** Failures building the start-up bundle (esbuild missing, a layout the loader could not use). */
export class BundleError extends VmmError<BundleErrorKind> {}
