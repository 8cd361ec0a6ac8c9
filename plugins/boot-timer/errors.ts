import { VmmError } from '../../core/errors.js';

export type BootTimerErrorKind = 'Config';

/** The one error class of the boot-timer plugin. */
export class BootTimerError extends VmmError<BootTimerErrorKind> {}
