import { VmmError } from '../../core/errors.js';

export type RtcErrorKind = 'Config';

/** The one error class of the rtc plugin. */
export class RtcError extends VmmError<RtcErrorKind> {}
