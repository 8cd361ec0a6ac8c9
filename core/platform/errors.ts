import { VmmError } from '../errors.js';

/** The one error class of core/platform: a resource ran out or was claimed twice. */
export class PlatformError extends VmmError<'Exhausted' | 'Taken' | 'Invalid'> {}
