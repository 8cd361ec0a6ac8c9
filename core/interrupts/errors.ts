import { VmmError } from '../errors.js';

/**
 * The one error class of core/interrupts: a bad request ('Invalid': vector index, count,
 * message out of range) or use after dispose ('Disposed').
 */
export class InterruptError extends VmmError<'Invalid' | 'Disposed'> {}
