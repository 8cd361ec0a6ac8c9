import { VmmError } from '../errors.js';

/**
 * The one error class of core/state. Kinds:
 * - 'Invalid': a saved state (untrusted) fails its schema or the owner's checks;
 * - 'Version': a saved state version this build cannot read (newer, or older without an upgrade);
 * - 'Mismatch': saved states and the VM's snapshottables do not pair up (missing, unknown, duplicate id);
 * - 'Save': an object cannot save now (e.g. requests in flight: pause first), or its own state does not
 *   fit its schema (a bug in that object);
 * - 'Load': applying already validated state failed part-way (the VM must be discarded).
 */
export class StateError extends VmmError<'Invalid' | 'Version' | 'Mismatch' | 'Save' | 'Load'> {}
