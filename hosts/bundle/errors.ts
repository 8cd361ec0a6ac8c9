import { VmmError } from '../../core/errors.js';

/**
 * Why a bundle build failed: esbuild is not installed, a worker file the code starts is missing, an output sits where
 * the loader would not find its build folder, or an input file vanished during the build.
 */
export type BundleErrorKind = 'NoEsbuild' | 'Worker' | 'Layout' | 'Input';

/** Failures building the start-up bundle (esbuild missing, a layout the loader could not use). */
export class BundleError extends VmmError<BundleErrorKind> {}
