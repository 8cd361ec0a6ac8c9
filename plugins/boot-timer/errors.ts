import { VmmError } from '../../core/errors.js';

/** Kinds of BootTimerError: a VM without the marker window, or a bus that refuses it. */
export type BootTimerErrorKind = 'Config';

/** The one error class of the boot-timer plugin. */
export class BootTimerError extends VmmError<BootTimerErrorKind> {}
