import { VmmError } from '../errors.js';

/** The one error class of core/bus. */
export class BusError extends VmmError<'Overlap' | 'NotRegistered' | 'InvalidAccess'> {}
