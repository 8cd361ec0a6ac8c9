import { VmmError } from '../errors.js';

/** The one error class of core/events. */
export class EventLoopError extends VmmError<'Watch' | 'EventFd' | 'Disposed'> {}
