import { VmmError } from '../errors.js';

/**
 * The one error class of core/platform: a resource ran out ('Exhausted'), a place is already
 * held ('Taken'), lies outside its space ('OutOfRange'), or a request or layout is malformed ('Invalid').
 */
export class PlatformError extends VmmError<'Exhausted' | 'Taken' | 'Invalid' | 'OutOfRange'> {}
