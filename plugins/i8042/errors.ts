import { VmmError } from '../../core/errors.js';

/** Why the i8042 plugin failed: 'Config' (its ports or line could not be taken). */
export type I8042ErrorKind = 'Config';

/** The one error class of the i8042 plugin. */
export class I8042Error extends VmmError<I8042ErrorKind> {}
