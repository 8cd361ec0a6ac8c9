import { VmmError } from '../../core/errors.js';

/** Why the serial plugin failed: config, console back end, saved state, or the interrupt line. */
export type SerialErrorKind = 'Config' | 'Backend' | 'State' | 'Irq';

/** The one error class of the serial plugin: what was wrong plus the port, path or field involved. */
export class SerialError extends VmmError<SerialErrorKind> {}
