import { VmmError } from '../errors.js';

/** The one error class of core/device. */
export class DeviceError extends VmmError<'Duplicate'> {}
