import { VmmError } from '../../core/errors.js';

/** Config: a bad setting; Target: a target the guest cannot have; State: a saved state that does not fit. */
export type VirtioBalloonErrorKind = 'Config' | 'Target' | 'State';

/** The one error class of the virtio-balloon device and plugin. */
export class VirtioBalloonError extends VmmError<VirtioBalloonErrorKind> {}
