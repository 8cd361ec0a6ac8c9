import { VmmError } from '../../core/errors.js';

/** Why the rtc plugin failed: 'Config' (its ports could not be taken). */
export type RtcErrorKind = 'Config';

/** The one error class of the rtc plugin. */
export class RtcError extends VmmError<RtcErrorKind> {}
