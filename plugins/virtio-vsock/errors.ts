import { VmmError } from '../../core/errors.js';

/** Config: a bad setting or a uds_path that cannot be used; State: a saved state that does not fit. */
export type VirtioVsockErrorKind = 'Config' | 'State';

/** The one error class of the virtio-vsock device and plugin. */
export class VirtioVsockError extends VmmError<VirtioVsockErrorKind> {}
